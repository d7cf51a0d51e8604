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

	"github.com/resumer/resumer/brand"
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
		// No locale field, no brands file: the e-mail's fallback, English; no template_id
		// or brand.
		"locale": "en",
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

// TestWebhookBrandAndLocale: the body names the inquiry's template, the brand picked for it
// and the locale resumer's own e-mail would be written in, chosen exactly as the e-mail
// channel chooses them (the inquiry's locale field, else the brand's default, else English);
// template_id and brand are left out when unknown, and the signature (checked by receiver)
// covers the body with them.
func TestWebhookBrandAndLocale(t *testing.T) {
	brands := testBrands(t) // acme (itmpl_acme, the default), globex (prefix globex, german)
	tests := []struct {
		name             string
		brands           *brand.Set
		template, ref    string
		locale           string
		want             map[string]string // "" means the field is absent
		wantEmailSubject string            // the e-mail for the same reminder, same brands
	}{
		{"brand by template, es-MX", brands, "itmpl_acme", "user-123", "es-MX",
			map[string]string{"template_id": "itmpl_acme", "locale": "es", "brand": "acme"},
			"Acme Bank: termina tu verificación de identidad (quedan aproximadamente 6 horas)"},
		{"brand by prefix, unknown locale falls back to the brand's", brands, "itmpl_other", "globex-7", "fr",
			map[string]string{"template_id": "itmpl_other", "locale": "de", "brand": "globex"},
			"Globex: Bitte schließen Sie Ihre Identitätsprüfung ab (läuft in etwa 6 Stunden ab)"},
		{"country code, no template", brands, "", "globex-7", "AR",
			map[string]string{"template_id": "", "locale": "es", "brand": "globex"},
			"Globex te espera (aproximadamente 6 horas)"},
		{"default brand, no locale", brands, "", "user-123", "",
			map[string]string{"template_id": "", "locale": "en", "brand": "acme"},
			"Acme Bank: finish your identity verification (about 6 hours left)"},
		{"no brands file, de-AT", nil, "itmpl_acme", "user-123", "de-AT",
			map[string]string{"template_id": "itmpl_acme", "locale": "de", "brand": ""},
			"Bitte schließen Sie Ihre Identitätsprüfung ab (läuft in etwa 6 Stunden ab)"},
		{"no brands file, unknown locale", nil, "", "", "xx",
			map[string]string{"template_id": "", "locale": "en", "brand": ""},
			"Finish your identity verification (about 6 hours left)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := receiver(t, http.StatusOK, 0)
			ch := newTestWebhook(t, srv.URL, func(o *WebhookOptions) { o.Brands = tt.brands })
			r := testReminder(NewStage(6*time.Hour), "Jane")
			r.TemplateID, r.ReferenceID, r.Locale = tt.template, tt.ref, tt.locale
			if retry, err := ch.Send(t.Context(), r); retry || err != nil {
				t.Fatalf("Send = %v, %v; want false, nil", retry, err)
			}
			ds := got()
			if len(ds) != 1 {
				t.Fatalf("%d deliveries, want 1", len(ds))
			}
			var body map[string]any
			if err := json.Unmarshal(ds[0].body, &body); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				v, ok := body[k]
				switch {
				case want == "" && ok:
					t.Errorf("body has %s = %v, want it left out: %s", k, v, ds[0].body)
				case want != "" && v != want:
					t.Errorf("body[%s] = %v, want %q", k, v, want)
				}
			}
			// The existing fields are all still there.
			for _, k := range []string{"type", "inquiry_id", "reference_id", "stage", "expires_at", "link"} {
				if _, ok := body[k]; !ok {
					t.Errorf("body lost %s: %s", k, ds[0].body)
				}
			}
			if body["type"] != ReminderEventType {
				t.Errorf("type = %v", body["type"])
			}
			// A receiver verifying with the documented scheme accepts it.
			ts, _ := strconv.ParseInt(ds[0].header.Get("webhook-timestamp"), 10, 64)
			if sig := SignWebhook(testWebhookKey, ds[0].header.Get("webhook-id"), ts, ds[0].body); sig != ds[0].header.Get("webhook-signature") {
				t.Errorf("webhook-signature = %q, want %q", ds[0].header.Get("webhook-signature"), sig)
			}
			// The e-mail for the same reminder speaks for the same brand in the same language.
			email := newTestEmail(t, nil, func(o *EmailOptions) { o.Brands = tt.brands })
			msg, b, err := email.render(r, testClock)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Subject != tt.wantEmailSubject {
				t.Errorf("e-mail subject %q, want %q", msg.Subject, tt.wantEmailSubject)
			}
			if wantBrand := tt.want["brand"]; wantBrand != "" && b.ID != wantBrand {
				t.Errorf("e-mail brand %s, webhook brand %s", b.ID, wantBrand)
			}
		})
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
