package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/webhook"
)

const (
	fixtureEventID   = "evt_kQ3tW8mZr5xC9vB2nL7pJ4hD"
	fixtureInquiryID = "inq_VNb5oPDNrXhLMaWNkYBxDfJ2"
)

// receiverNow is the receiver's clock in the HTTP tests: a few seconds after Persona signed.
var receiverNow = now.Add(3 * time.Second)

// harness is a Receiver served over HTTP in front of a real JetStream stream.
type harness struct {
	nats   *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
	reg    *prometheus.Registry
	logs   *testenv.Buffer
	srv    *httptest.Server
	sentMu sync.Mutex
	sent   []string // every v1 the test sent, none of which may reach a log line
}

// newHarness starts a receiver publishing to a fresh stream on s, configured by configure
// (may be nil). Logs are captured at debug level and checked, when the test ends, for the
// secrets, the signatures and the personal data of the fixture.
func newHarness(t *testing.T, s *server.Server, configure func(*webhook.Options)) *harness {
	t.Helper()
	return newHarnessWith(t, s, eventstream.Subjects{}, configure)
}

// newHarnessWith is newHarness with a stream (and receiver) under the given subject scheme.
func newHarnessWith(t *testing.T, s *server.Server, subjects eventstream.Subjects, configure func(*webhook.Options)) *harness {
	t.Helper()
	// No reconnect buffer: while NATS is away a publish fails at once instead of queueing.
	nc, err := nats.Connect(s.ClientURL(),
		nats.ReconnectBufSize(-1), nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond), nats.Timeout(time.Second))
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	h := &harness{nats: s, nc: nc, js: js, name: testenv.Prefix(t), reg: prometheus.NewRegistry(), logs: &testenv.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h.stream, err = eventstream.Ensure(ctx, js, eventstream.Config{Name: h.name, Subjects: subjects}); err != nil {
		t.Fatal(err)
	}
	opts := webhook.Options{
		Secrets:        [][]byte{oldSecret, newSecret},
		MaxBodyBytes:   16 << 10,
		PublishTimeout: 500 * time.Millisecond,
		Publisher:      js,
		Stream:         h.name,
		Subjects:       subjects,
		Logger:         slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:     h.reg,
		Now:            func() time.Time { return receiverNow },
	}
	if configure != nil {
		configure(&opts)
	}
	rc, err := webhook.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	rc.Register(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() {
		logs := h.logs.String()
		for _, secret := range []string{string(oldSecret), string(newSecret), "jane@example.com", `"Jane"`, `"reference-id"`} {
			if strings.Contains(logs, secret) {
				t.Errorf("logs contain %q:\n%s", secret, logs)
			}
		}
		for _, v1 := range h.sent {
			if strings.Contains(logs, v1) {
				t.Errorf("logs contain a signature:\n%s", logs)
			}
		}
	})
	return h
}

type response struct {
	status     int
	body       string
	retryAfter string
}

// post sends body to the receiver with the header set verbatim (its name is not
// canonicalised), as Persona would.
func (h *harness) post(t *testing.T, headerName, headerValue string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+webhook.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if headerName != "" {
		req.Header[headerName] = []string{headerValue}
		if sets, err := webhook.ParseSignatureHeader(headerValue); err == nil {
			h.sentMu.Lock()
			for _, s := range sets {
				h.sent = append(h.sent, fmt.Sprintf("%x", s.Signature))
			}
			h.sentMu.Unlock()
		}
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", webhook.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After")}
}

// deliver posts body signed with newSecret at t, like one Persona delivery attempt.
func (h *harness) deliver(t *testing.T, body []byte, at time.Time) response {
	t.Helper()
	return h.post(t, webhook.SignatureHeader, webhook.Sign(body, newSecret, at), bytes.NewReader(body))
}

func (h *harness) stored(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := h.stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// message returns the stream's message at seq.
func (h *harness) message(t *testing.T, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, err := h.stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatalf("get message %d: %v", seq, err)
	}
	return msg
}

// value returns the counter resumer_webhook_<name>{label=value}, or a histogram's sample
// count when label is "".
func (h *harness) value(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "resumer_webhook_"+name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return float64(m.GetHistogram().GetSampleCount())
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series resumer_webhook_%s{%s=%q}", name, label, value)
	return 0
}

// publisherFunc adapts a function to webhook.Publisher, for the misbehaviours a real
// JetStream cannot be made to show on demand.
type publisherFunc func(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error)

func (f publisherFunc) PublishMsg(ctx context.Context, msg *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return f(ctx, msg)
}
