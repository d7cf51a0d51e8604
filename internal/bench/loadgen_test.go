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
