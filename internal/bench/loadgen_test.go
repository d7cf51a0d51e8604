package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/webhook"
)

// TestLoadgenMain runs the load generator process's job in-process against a server that
// checks each signature: every body of the corpus arrives intact, signed, once.
func TestLoadgenMain(t *testing.T) {
	events := corpus(7, 50, time.Now(), true)
	secret := []byte("wbhsec_loadgen_test")
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(r.Header.Get(webhook.SignatureHeader), body, [][]byte{secret}, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		seen[string(body)]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	path, err := writeCorpus(t.TempDir(), events)
	if err != nil {
		t.Fatal(err)
	}
	job, _ := json.Marshal(loadgenJob{URL: srv.URL + webhook.Path, Secret: secret, Corpus: path,
		Concurrency: 4, N: len(events), Duration: time.Minute})
	var out bytes.Buffer
	if err := LoadgenMain(context.Background(), bytes.NewReader(job), &out); err != nil {
		t.Fatal(err)
	}
	var res loadgenResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	if res.OK != len(events) || res.Failed != 0 || len(res.Latencies) != len(events) {
		t.Fatalf("result: %d ok, %d failed (%s), %d latencies; want %d ok", res.OK, res.Failed, res.FirstErr, len(res.Latencies), len(events))
	}
	for i, ev := range events {
		if seen[string(ev.Body)] != 1 {
			t.Fatalf("event %d received %d times", i, seen[string(ev.Body)])
		}
	}
	if err := LoadgenMain(context.Background(), bytes.NewReader([]byte("{")), io.Discard); err == nil {
		t.Error("a garbled job did not fail")
	}
}

// TestLoadgenPublish runs the raw baseline's job: every event of the corpus published to the
// stream once, under its own event id, with the receiver's subject and headers.
func TestLoadgenPublish(t *testing.T) {
	s := testenv.NATS(t)
	nc, js, err := connectNATS(s.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := eventstream.Ensure(ctx, js, eventstream.Config{Name: "LOADGEN_TEST"}); err != nil {
		t.Fatal(err)
	}
	events := corpus(9, 20, time.Now(), true)
	path, err := writeCorpus(t.TempDir(), events)
	if err != nil {
		t.Fatal(err)
	}
	job, _ := json.Marshal(loadgenJob{Publish: true, NATSURL: s.ClientURL(), Stream: "LOADGEN_TEST", Corpus: path,
		Concurrency: 4, N: len(events), Duration: time.Minute})
	var out bytes.Buffer
	if err := LoadgenMain(ctx, bytes.NewReader(job), &out); err != nil {
		t.Fatal(err)
	}
	var res loadgenResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.OK != len(events) || res.Failed != 0 {
		t.Fatalf("%d ok, %d failed (%s); want %d ok", res.OK, res.Failed, res.FirstErr, len(events))
	}
	stream, err := js.Stream(ctx, "LOADGEN_TEST")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(events)) {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, len(events))
	}
}
