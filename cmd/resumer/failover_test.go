package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/clustertest"
	"github.com/resumer/resumer/internal/redisconn"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/state"
	"github.com/resumer/resumer/webhook"
)

// TestFailoverUnderLoad runs the service on real loopback clusters (a 3-node NATS cluster
// with R3 streams, and a Redis Cluster of 3 primaries and 3 replicas or a Redis primary and
// replica under three Sentinels) with two replicas of the worker and notify roles, sends a
// steady, bounded stream of signed webhooks, and meanwhile kills -9 a Redis primary, moves
// slots between the cluster's primaries (redis-cli --cluster reshard) and stops a NATS server. Afterwards: every event answered 2xx is applied, each reminder stage
// went out at most once (and every pending inquiry got its reminder), nothing was
// dead-lettered, and readiness went red during the Redis failover and came back, all
// without restarting the service (DESIGN.md decisions 1, 5 and 10).
func TestFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster failover test (about a minute) skipped in -short mode")
	}
	for _, mode := range []redisconn.Mode{redisconn.Cluster, redisconn.Sentinel} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			failoverUnderLoad(t, mode)
		})
	}
}

// redisUnderTest is the Redis deployment of one run: its URL and how to kill its primary.
type redisUnderTest struct {
	url         string
	killPrimary func(ctx context.Context) (string, error)
	healthy     func(ctx context.Context) error
	// reshard, on a Redis Cluster, moves slots between two primaries (nil otherwise).
	reshard func(ctx context.Context) error
}

func startRedisUnderTest(t *testing.T, mode redisconn.Mode, hotKey string) redisUnderTest {
	switch mode {
	case redisconn.Cluster:
		c := clustertest.RedisClusterT(t)
		return redisUnderTest{
			url: c.URL(),
			killPrimary: func(ctx context.Context) (string, error) {
				p, err := c.PrimaryOf(ctx, hotKey)
				if err != nil {
					return "", err
				}
				p.Kill()
				return p.Addr(), nil
			},
			healthy: func(ctx context.Context) error { return c.WaitHealthy(ctx, time.Minute) },
			reshard: func(ctx context.Context) error {
				ps, err := c.Primaries(ctx)
				if err != nil {
					return err
				}
				if len(ps) < 2 {
					return fmt.Errorf("%d primaries", len(ps))
				}
				return c.Reshard(ctx, ps[0], ps[1], 2000)
			},
		}
	default:
		s := clustertest.SentinelT(t)
		return redisUnderTest{
			url: s.URL(),
			killPrimary: func(ctx context.Context) (string, error) {
				p, err := s.Primary(ctx)
				if err != nil {
					return "", err
				}
				p.Kill()
				return p.Addr(), nil
			},
			healthy: func(ctx context.Context) error { return s.WaitHealthy(ctx, time.Minute) },
		}
	}
}

func failoverUnderLoad(t *testing.T, mode redisconn.Mode) {
	ctx := context.Background()
	prefix := testenv.Prefix(t)
	stream := strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	nc := clustertest.NATSClusterT(t)
	rd := startRedisUnderTest(t, mode, prefix+":{0}:r")

	reminders := newReminderLog()
	hook := httptest.NewServer(reminders)
	t.Cleanup(hook.Close)

	const secret = "wbhsec_test_failover"
	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS":       secret,
		"RESUMER_NATS_URL":              nc.URL(),
		"RESUMER_STREAM_REPLICAS":       "3",
		"RESUMER_REDIS_URL":             rd.url,
		"RESUMER_REDIS_PREFIX":          prefix,
		"RESUMER_REDIS_SHARDS":          "8",
		"RESUMER_STREAM":                stream,
		"RESUMER_DLQ_STREAM":            stream + "_DLQ",
		"RESUMER_BATCH_SIZE":            "64",
		"RESUMER_REMIND_BEFORE":         "24h,1h",
		"RESUMER_NOTIFY_INTERVAL":       "500ms",
		"RESUMER_NOTIFY_LEASE":          "20s",
		"RESUMER_CHANNELS":              "webhook",
		"RESUMER_NOTIFY_WEBHOOK_URL":    hook.URL,
		"RESUMER_NOTIFY_WEBHOOK_SECRET": "whsec_" + "dGVzdC1yZW1pbmRlci13ZWJob29rLXNlY3JldA==",
		"RESUMER_LINK_MODE":             "redirect",
		"RESUMER_PUBLIC_URL":            "http://127.0.0.1:9",
		"RESUMER_LINK_SECRET":           "failover-test-link-secret-0123456789abcdef",
		"RESUMER_LOG_LEVEL":             "info",
	}
	urls, stopA, stderrA, _ := startApp(t, []string{"serve", "--roles", "webhook,worker,notify", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
	urlsB, stopB, stderrB, _ := startApp(t, []string{"serve", "--roles", "worker,notify", "--admin-addr", "127.0.0.1:0"}, environ)
	defer func() {
		if t.Failed() {
			t.Logf("replica A log (tail):\n%s", tail(stderrA.String(), 60))
			t.Logf("replica B log (tail):\n%s", tail(stderrB.String(), 30))
		}
	}()
	waitFor(t, 60*time.Second, "both replicas ready", func() bool {
		a, _ := get(t, urls["admin"]+"/readyz")
		b, _ := get(t, urlsB["admin"]+"/readyz")
		return a == http.StatusOK && b == http.StatusOK
	})

	ready := watchReadiness(urls["admin"] + "/readyz")
	defer ready.stop()

	// The load: inquiries each get inquiry.created then inquiry.started, pending and expiring
	// in 23 hours, so the 24h stage is due at once and the 1h stage not during the test.
	const inquiries = 120
	load := &webhookLoad{url: urls["http"] + "/webhooks/persona", secret: []byte(secret)}
	expires := time.Now().Add(23 * time.Hour).UTC()
	var sent atomic.Int64
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := range inquiries {
			id := fmt.Sprintf("inq_fo%s%04d", strings.TrimPrefix(prefix, "t-"), i)
			at := time.Now().UTC().Add(-time.Minute)
			load.send(fmt.Sprintf("evt_c%s%04d", prefix[2:], i), "inquiry.created", id, "created", at, expires)
			load.send(fmt.Sprintf("evt_s%s%04d", prefix[2:], i), "inquiry.started", id, "pending", at.Add(time.Second), expires)
			sent.Add(1)
			time.Sleep(60 * time.Millisecond) // steady: about 30 events a second
		}
	}()

	// A third in: kill -9 the Redis primary; readiness must go red and come back.
	waitFor(t, time.Minute, "a third of the load", func() bool { return sent.Load() >= inquiries/3 })
	killed, err := rd.killPrimary(ctx)
	if err != nil {
		t.Fatalf("kill the redis primary: %v", err)
	}
	t.Logf("killed redis primary %s", killed)
	killedAt := time.Now()
	waitFor(t, time.Minute, "readiness red after the redis primary died", func() bool { return ready.sawRed() })
	if err := rd.healthy(ctx); err != nil {
		t.Fatalf("redis did not fail over: %v", err)
	}
	waitFor(t, time.Minute, "readiness green after the failover", func() bool { return ready.greenSince(killedAt) })
	t.Logf("redis failover: readiness back %.1fs after the kill", time.Since(killedAt).Seconds())

	// On a cluster, move slots between primaries while the load goes on.
	if rd.reshard != nil {
		if err := rd.reshard(ctx); err != nil {
			t.Fatalf("reshard: %v", err)
		}
		t.Log("resharded 2000 slots")
	}

	// Two thirds in: stop the NATS server that leads the events stream.
	waitFor(t, time.Minute, "two thirds of the load", func() bool { return sent.Load() >= 2*inquiries/3 })
	leader := nc.StreamLeader(stream)
	if leader < 0 {
		leader = 0
	}
	nc.Stop(leader)
	t.Logf("stopped nats server %d (the stream leader)", leader)

	select {
	case <-loadDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("the load did not finish within 3 minutes")
	}
	acked := load.acknowledged()
	t.Logf("%d events acknowledged (%d answers 503 and retried, %d other failures retried)", len(acked), load.unavailable.Load(), load.failed.Load())
	if len(acked) != 2*inquiries {
		t.Fatalf("%d of %d events acknowledged", len(acked), 2*inquiries)
	}

	// Every acknowledged event is applied: each inquiry's newest event is its started event.
	rdb, _, err := redisconn.New(rd.url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	store, err := state.New(rdb, state.Config{Prefix: prefix, Shards: 8, RemindBefore: []time.Duration{24 * time.Hour, time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	missing := func() []string {
		var out []string
		for i := range inquiries {
			id := fmt.Sprintf("inq_fo%s%04d", strings.TrimPrefix(prefix, "t-"), i)
			inq, err := store.Inquiry(ctx, id)
			if err != nil || inq.LastEventID != fmt.Sprintf("evt_s%s%04d", prefix[2:], i) || inq.Status != "pending" {
				out = append(out, id)
			}
		}
		return out
	}
	waitFor(t, 90*time.Second, "every acknowledged event applied", func() bool { return len(missing()) == 0 })

	// Every pending inquiry gets its 24h reminder, once.
	waitFor(t, 90*time.Second, "every inquiry reminded", func() bool { return reminders.distinct() == inquiries })
	time.Sleep(2 * time.Second) // a sweep or two more: a duplicate would show now
	if dups := reminders.duplicates(); len(dups) > 0 {
		t.Errorf("reminder stages sent more than once: %v", dups)
	}

	// The CLI reads the same records through the same URL.
	var out bytes.Buffer
	first := fmt.Sprintf("inq_fo%s%04d", strings.TrimPrefix(prefix, "t-"), 0)
	if err := run(ctx, []string{"inquiry", "show", first, "--json"}, env(environ), nil, &out, io.Discard); err != nil {
		t.Fatalf("inquiry show on %s: %v", mode, err)
	}
	var shown map[string]any
	if err := json.Unmarshal(out.Bytes(), &shown); err != nil || shown["status"] != "pending" {
		t.Errorf("inquiry show on %s: %s (%v)", mode, out.String(), err)
	}

	// The streams are R3, and nothing was dead-lettered.
	js := testenv.JetStream(t, nc.URL())
	if s, err := js.Stream(ctx, stream); err != nil {
		t.Errorf("events stream: %v", err)
	} else if info, err := s.Info(ctx); err != nil || info.Config.Replicas != 3 {
		t.Errorf("events stream: replicas %v (%v), want 3", info, err)
	}
	dlq, err := js.Stream(ctx, stream+"_DLQ")
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d events dead-lettered", info.State.Msgs)
	}
	if info.Config.Replicas != 3 {
		t.Errorf("dead-letter stream: %d replicas, want 3", info.Config.Replicas)
	}

	// Both replicas are still running and ready: recovered without a restart.
	waitFor(t, time.Minute, "both replicas ready at the end", func() bool {
		a, _ := get(t, urls["admin"]+"/readyz")
		b, _ := get(t, urlsB["admin"]+"/readyz")
		return a == http.StatusOK && b == http.StatusOK
	})
	if err := stopA(); err != nil {
		t.Errorf("replica A: %v", err)
	}
	if err := stopB(); err != nil {
		t.Errorf("replica B: %v", err)
	}
}

// webhookLoad posts signed events as Persona does: every non-2xx answer is retried (after a
// short pause, standing in for Persona's backoff), so every event is eventually acknowledged.
type webhookLoad struct {
	url         string
	secret      []byte
	mu          sync.Mutex
	acked       []string
	unavailable atomic.Int64
	failed      atomic.Int64
}

func (l *webhookLoad) send(eventID, name, inquiryID, status string, at, expires time.Time) {
	body := fmt.Appendf(nil, `{"data":{"type":"event","id":%q,"attributes":{"name":%q,"created-at":%q,"payload":{"data":{"type":"inquiry","id":%q,"attributes":{"status":%q,"reference-id":"user-fo","created-at":%q,"expires-at":%q,"fields":{"email-address":{"type":"string","value":"fo@example.com"},"name-first":{"type":"string","value":"Fo"}}},"relationships":{"inquiry-template":{"data":{"type":"inquiry-template","id":"itmpl_failover000000001"}}}}}}}}`,
		eventID, name, at.Format(time.RFC3339Nano), inquiryID, status, at.Format(time.RFC3339Nano), expires.Format(time.RFC3339Nano))
	client := &http.Client{Timeout: 10 * time.Second}
	for attempt := 0; attempt < 600; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, l.url, bytes.NewReader(body))
		req.Header.Set("Persona-Signature", webhook.Sign(body, l.secret, time.Now()))
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				l.mu.Lock()
				l.acked = append(l.acked, eventID)
				l.mu.Unlock()
				return
			}
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
				l.unavailable.Add(1)
			} else {
				l.failed.Add(1)
			}
		} else {
			l.failed.Add(1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *webhookLoad) acknowledged() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// reminderLog is the customer's reminder webhook endpoint: it counts deliveries per inquiry
// and stage.
type reminderLog struct {
	mu    sync.Mutex
	count map[string]int
}

func newReminderLog() *reminderLog { return &reminderLog{count: map[string]int{}} }

func (r *reminderLog) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body struct {
		InquiryID string `json:"inquiry_id"`
		Stage     string `json:"stage"`
	}
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil || body.InquiryID == "" {
		http.Error(w, "bad reminder", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.count[body.InquiryID+" "+body.Stage]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *reminderLog) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

func (r *reminderLog) duplicates() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k, n := range r.count {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	return out
}

// readinessWatch polls a /readyz URL every 100 ms and remembers what it saw.
type readinessWatch struct {
	mu       sync.Mutex
	red      bool
	lastRed  time.Time
	lastSeen time.Time
	green    bool
	done     chan struct{}
	once     sync.Once
}

func watchReadiness(url string) *readinessWatch {
	w := &readinessWatch{done: make(chan struct{})}
	client := &http.Client{Timeout: 3 * time.Second}
	go func() {
		for {
			select {
			case <-w.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := client.Get(url)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			w.mu.Lock()
			w.lastSeen, w.green = time.Now(), ok
			if !ok {
				w.red, w.lastRed = true, time.Now()
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *readinessWatch) sawRed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.red
}

// greenSince reports whether readiness is green now, after having been red after t.
func (w *readinessWatch) greenSince(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.green && w.lastRed.After(t) && w.lastSeen.After(w.lastRed)
}

func (w *readinessWatch) stop() { w.once.Do(func() { close(w.done) }) }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestIntakeWithoutNATSQuorum stops two of the three NATS servers under the R3 events stream:
// without a quorum nothing can be stored, so a signed webhook is answered 503 with
// Retry-After (Persona retries), never 2xx; once a server is back the same event is stored
// and answered 200 (DESIGN.md decision 1).
func TestIntakeWithoutNATSQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	t.Parallel()
	nc := clustertest.NATSClusterT(t)
	prefix := testenv.Prefix(t)
	stream := strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	const secret = "wbhsec_test_quorum"
	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS": secret,
		"RESUMER_NATS_URL":        nc.URL(),
		"RESUMER_STREAM_REPLICAS": "3",
		"RESUMER_STREAM":          stream,
		"RESUMER_PUBLISH_TIMEOUT": "1s",
	}
	urls, stop, stderr, _ := startApp(t, []string{"serve", "--roles", "webhook", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
	waitFor(t, time.Minute, "ready", func() bool { c, _ := get(t, urls["admin"]+"/readyz"); return c == http.StatusOK })
	post := func(id string) (int, string) {
		at := time.Now().UTC()
		body := fmt.Appendf(nil, `{"data":{"type":"event","id":%q,"attributes":{"name":"inquiry.started","created-at":%q,"payload":{"data":{"type":"inquiry","id":"inq_quorum0000000000000001","attributes":{"status":"pending"}}}}}}`, id, at.Format(time.RFC3339Nano))
		req, _ := http.NewRequest(http.MethodPost, urls["http"]+"/webhooks/persona", bytes.NewReader(body))
		req.Header.Set("Persona-Signature", webhook.Sign(body, []byte(secret), time.Now()))
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if code, _ := post("evt_quorum_before"); code != http.StatusOK {
		t.Fatalf("with quorum: %d", code)
	}

	// Keep the server the client is likely connected to; stop the other two.
	nc.Stop(1)
	nc.Stop(2)
	// Once the client is back on the remaining server (not only while it reconnects), the
	// answer is still 503: the stream has no quorum.
	waitFor(t, time.Minute, "the client connected to the remaining server", func() bool {
		_, body := get(t, urls["admin"]+"/readyz")
		return !strings.Contains(body, "nats: ") || strings.Contains(body, "nats: ok")
	})
	for i := range 3 {
		code, retryAfter := post(fmt.Sprintf("evt_quorum_none%d", i))
		if code != http.StatusServiceUnavailable || retryAfter == "" {
			t.Fatalf("without a stream quorum: %d, Retry-After %q; want 503 with Retry-After\n%s", code, retryAfter, tail(stderr.String(), 20))
		}
	}

	// A server back: quorum again, and the retried event is stored.
	if err := nc.Start(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the event stored once a quorum is back", func() bool {
		code, _ := post("evt_quorum_none0")
		return code == http.StatusOK
	})
	if err := stop(); err != nil {
		t.Errorf("run: %v", err)
	}
}
