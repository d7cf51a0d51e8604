package reconcile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/reconcile"
	"github.com/resumer/resumer/state"
)

// BenchmarkPass10k measures one reconciliation pass over 10,000 tracked open inquiries, 100
// of which finished at Persona while webhooks were off: the Persona calls it makes, the
// differences it finds and its wall time, unpaced ("unthrottled", the baseline: Redis,
// JetStream and simulator cost only) and at the default budget (20 % of 240 calls a minute,
// shared limiter in Redis). Run with:
//
//	go test ./reconcile/ -run '^$' -bench BenchmarkPass10k -benchtime 1x -timeout 15m
func BenchmarkPass10k(b *testing.B) {
	for _, mode := range []string{"unthrottled", "default-budget"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				r, sim, want := setupTenThousand(b, mode == "default-budget")
				before := len(sim.RequestLog())
				b.StartTimer()
				start := time.Now()
				report, err := r.Pass(context.Background(), reconcile.PassOptions{})
				elapsed := time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				calls := len(sim.RequestLog()) - before
				found := map[string]bool{}
				for _, d := range report.Differences {
					found[d.InquiryID] = true
				}
				for id := range want {
					if !found[id] {
						b.Errorf("difference of %s not found", id)
					}
				}
				b.ReportMetric(float64(calls), "persona-calls")
				b.ReportMetric(float64(len(report.Differences)), "differences")
				b.ReportMetric(float64(report.Checked), "checked")
				b.ReportMetric(elapsed.Seconds(), "wall-s")
			}
		})
	}
}

// setupTenThousand tracks 10,000 created inquiries in a fresh store and the simulator (made
// three days ago, outside the replay's 48 h lookback), then completes 100 of them at the
// simulator with webhooks off.
func setupTenThousand(b *testing.B, budgeted bool) (*reconcile.Reconciler, *personatest.Server, map[string]bool) {
	b.Helper()
	rdb, prefix := testenv.Redis(b)
	srv := testenv.NATS(b)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	stream := "EV_" + prefix
	if _, err := eventstream.Ensure(context.Background(), js, eventstream.Config{Name: stream}); err != nil {
		b.Fatal(err)
	}
	store, err := state.New(rdb, state.Config{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	past := time.Now().Add(-72 * time.Hour)
	sim := personatest.NewServer(b, personatest.Options{
		Now: func() time.Time { return past }, AfterCreate: 7 * 24 * time.Hour, RateLimit: 100000,
	})
	sim.SetWebhooks(false)
	var ids []string
	batch := make([]*persona.Event, 0, 500)
	for i := range 10000 {
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: fmt.Sprintf("u-%d", i)})
		ids = append(ids, inq.ID)
		batch = append(batch, &persona.Event{
			ID: fmt.Sprintf("evt_bench%019d", i), Name: "inquiry.created", CreatedAt: inq.CreatedAt,
			InquiryID: inq.ID, PayloadType: "inquiry", Inquiry: inq,
		})
		if len(batch) == cap(batch) {
			if _, err := store.ApplyBatch(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	sim.Advance(72 * time.Hour)
	want := map[string]bool{}
	for i := 0; i < len(ids); i += 100 {
		if err := sim.Complete(ids[i]); err != nil {
			b.Fatal(err)
		}
		want[ids[i]] = true
	}
	opts := persona.ClientOptions{BaseURL: sim.URL(), APIKey: sim.APIKey()}
	if budgeted {
		shared, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		own, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix, Name: "reconcile", Limit: state.DefaultRateLimit / 5})
		if err != nil {
			b.Fatal(err)
		}
		opts.Limiter = &reconcile.BudgetLimiter{Budget: own, Shared: shared, Share: 0.2}
	}
	client, err := persona.NewClient(opts)
	if err != nil {
		b.Fatal(err)
	}
	r, err := reconcile.New(reconcile.Options{Store: store, Persona: client, Publisher: js, Stream: stream})
	if err != nil {
		b.Fatal(err)
	}
	return r, sim, want
}
