package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/webhook"
)

func BenchmarkReceiver(b *testing.B) {
	body := readFixture(b, "inquiry-started.json")
	b.Run("publisher=jetstream", func(b *testing.B) {
		s := testenv.NATS(b)
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		name := testenv.Prefix(b)
		if _, err := eventstream.Ensure(context.Background(), js, eventstream.Config{Name: name}); err != nil {
			b.Fatal(err)
		}
		benchmarkReceiver(b, body, js, name)
	})
	b.Run("publisher=stub", func(b *testing.B) {
		var seq uint64
		var mu sync.Mutex
		pub := publisherFunc(func(context.Context, *nats.Msg) (*jetstream.PubAck, error) {
			mu.Lock()
			defer mu.Unlock()
			seq++
			return &jetstream.PubAck{Stream: "EVENTS", Sequence: seq}, nil
		})
		benchmarkReceiver(b, body, pub, "EVENTS")
	})
}

// benchmarkReceiver measures the whole handler path (signature, envelope, publish, PubAck)
// for distinct events of the fixture's size, without the network in front of the handler.
func benchmarkReceiver(b *testing.B, body []byte, pub webhook.Publisher, stream string) {
	rc, err := webhook.New(webhook.Options{
		Secrets: [][]byte{newSecret}, Publisher: pub, Stream: stream,
		Now: func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	rc.Register(mux)
	bodies := make([][]byte, b.N)
	headers := make([]string, b.N)
	for i := range b.N {
		bodies[i] = bytes.Replace(body, []byte(fixtureEventID), fmt.Appendf(nil, "evt_%024d", i), 1)
		headers[i] = webhook.Sign(bodies[i], newSecret, now)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(bodies[i]))
		req.Header.Set(webhook.SignatureHeader, headers[i])
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
