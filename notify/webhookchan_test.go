package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testWebhookKey is the key of the whsec_ secret the tests configure.
var testWebhookKey = []byte("a webhook key of the customer!!!")

// delivery is one request a test receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver answers every request with status and records it; it checks the signature the
// way a Standard Webhooks receiver would and fails the test when it does not verify.
func receiver(t *testing.T, status int, delay time.Duration) (*httptest.Server, func() []delivery) {
	t.Helper()
	var mu sync.Mutex
	var got []delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.Header.Clone(), body})
		mu.Unlock()

		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		sig, ok := strings.CutPrefix(r.Header.Get("webhook-signature"), "v1,")
		mac, err := base64.StdEncoding.DecodeString(sig)
		h := hmacSHA256(testWebhookKey, []byte(id+"."+ts+"."+string(body)))
		if !ok || err != nil || !hmac.Equal(mac, h) {
			t.Errorf("signature %q does not verify", r.Header.Get("webhook-signature"))
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []delivery {
		mu.Lock()
		defer mu.Unlock()
		return append([]delivery(nil), got...)
	}
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

func newTestWebhook(t *testing.T, url string, edit func(*WebhookOptions)) *WebhookChannel {
	t.Helper()
	opts := WebhookOptions{
		URL:    url,
		Secret: "whsec_" + base64.StdEncoding.EncodeToString(testWebhookKey),
		Now:    func() time.Time { return testClock },
	}
	if edit != nil {
		edit(&opts)
	}
	ch, err := NewWebhookChannel(opts)
	if err != nil {
		t.Fatalf("NewWebhookChannel: %v", err)
	}
	return ch
}

func TestWebhookDelivers(t *testing.T) {
	srv, got := receiver(t, http.StatusNoContent, 0)
	ch := newTestWebhook(t, srv.URL+"/hooks/resumer", nil)
	r := testReminder(NewStage(6*time.Hour), "Jane")
	for range 2 {
		if retry, err := ch.Send(t.Context(), r); retry || err != nil {
			t.Fatalf("Send = %v, %v; want false, nil", retry, err)
		}
	}
	ds := got()
	if len(ds) != 2 {
		t.Fatalf("%d deliveries, want 2", len(ds))
	}
	d := ds[0]
	if id := d.header.Get("webhook-id"); id != WebhookID(r.InquiryID, "6h") || !strings.HasPrefix(id, "rem_") || len(id) != 36 {
		t.Errorf("webhook-id = %q", id)
	}
	if id2 := ds[1].header.Get("webhook-id"); id2 != d.header.Get("webhook-id") {
		t.Errorf("a retry has another webhook-id: %s", id2)
	}
	if WebhookID(r.InquiryID, "6h") == WebhookID(r.InquiryID, "1h") {
		t.Error("two stages share a webhook-id")
	}
	if ts := d.header.Get("webhook-timestamp"); ts != strconv.FormatInt(testClock.Unix(), 10) {
		t.Errorf("webhook-timestamp = %q", ts)
	}
	if ct := d.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(d.body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type":         "inquiry.reminder",
		"inquiry_id":   r.InquiryID,
		"reference_id": "user-123",
		"stage":        "6h",
		"expires_at":   "2026-01-06T10:00:00Z",
		"link":         testLink,
	}
	if len(body) != len(want) {
		t.Errorf("body has %d fields, want %d: %s", len(body), len(want), d.body)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%s] = %v, want %v", k, body[k], v)
		}
	}
	if strings.Contains(string(d.body), testAddress) || strings.Contains(string(d.body), "Jane") {
		t.Error("body carries the user's address or name")
	}
}

func TestWebhookStatusClasses(t *testing.T) {
	tests := []struct {
		status    int
		wantRetry bool
	}{
		{http.StatusMovedPermanently, false},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusNotFound, false},
		{http.StatusRequestTimeout, true},
		{http.StatusConflict, false},
		{http.StatusGone, false},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			srv, _ := receiver(t, tt.status, 0)
			reg := prometheus.NewRegistry()
			ch := newTestWebhook(t, srv.URL, func(o *WebhookOptions) { o.Registerer = reg })
			retry, err := ch.Send(t.Context(), testReminder(NewStage(time.Hour), "Jane"))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if !strings.Contains(err.Error(), "answered "+strconv.Itoa(tt.status)) {
				t.Errorf("error %q does not name the status", err)
			}
			assertNoSecrets(t, err)
			if v := testutil.ToFloat64(ch.metrics.errors.WithLabelValues("webhook", strconv.FormatBool(tt.wantRetry))); v != 1 {
				t.Errorf("errors_total = %v, want 1", v)
			}
		})
	}
}

func TestWebhookTransportFailures(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		srv, _ := receiver(t, http.StatusOK, 5*time.Second)
		ch := newTestWebhook(t, srv.URL, func(o *WebhookOptions) { o.Timeout = 100 * time.Millisecond })
		retry, err := ch.Send(t.Context(), testReminder(NewStage(time.Hour), "Jane"))
		if err == nil || !retry {
			t.Fatalf("Send = %v, %v; want a retryable error", retry, err)
		}
		assertNoSecrets(t, err)
	})
	t.Run("connection refused, url credentials kept out", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + "/hook?token=s3cr3t"
		srv.Close()
		ch := newTestWebhook(t, url, nil)
		retry, err := ch.Send(t.Context(), testReminder(NewStage(time.Hour), "Jane"))
		if err == nil || !retry {
			t.Fatalf("Send = %v, %v; want a retryable error", retry, err)
		}
		assertNoSecrets(t, err, "hunter2", "s3cr3t")
	})
}

func TestWebhookKey(t *testing.T) {
	std := base64.StdEncoding.EncodeToString([]byte("key bytes"))
	tests := []struct {
		secret  string
		want    string
		wantErr bool
	}{
		{secret: "whsec_" + std, want: "key bytes"},
		{secret: "whsec_" + strings.TrimRight(std, "="), want: "key bytes"},
		{secret: "plain secret", want: "plain secret"},
		{secret: "wbhsec_persona_style", want: "wbhsec_persona_style"},
		{secret: "", wantErr: true},
		{secret: "whsec_", wantErr: true},
		{secret: "whsec_not base64!", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			got, err := WebhookKey(tt.secret)
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Errorf("WebhookKey = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNewWebhookChannelErrors(t *testing.T) {
	for _, opts := range []WebhookOptions{
		{URL: "", Secret: "s"},
		{URL: "/relative", Secret: "s"},
		{URL: "ftp://x.example", Secret: "s"},
		{URL: "https://x.example", Secret: ""},
		{URL: "https://x.example", Secret: "whsec_!!"},
	} {
		if _, err := NewWebhookChannel(opts); err == nil {
			t.Errorf("NewWebhookChannel(%+v) succeeded, want an error", opts)
		}
	}
}

func TestChannelsShareMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	newTestEmail(t, nil, func(o *EmailOptions) { o.Registerer = reg })
	newTestEmail(t, nil, func(o *EmailOptions) { o.Registerer = reg })
	newTestWebhook(t, "https://x.example", func(o *WebhookOptions) { o.Registerer = reg })
	if n := testutil.CollectAndCount(reg, "resumer_notify_channel_errors_total"); n != 4 {
		t.Errorf("%d error series, want 4 (two channels, retry true and false)", n)
	}
	if n := testutil.CollectAndCount(reg, "resumer_notify_channel_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
}
