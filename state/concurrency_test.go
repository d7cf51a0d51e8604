package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

// TestApplyBatchConcurrent applies the events of many inquiries, shuffled and spread over
// goroutines that each call ApplyBatch, and expects the state a serial apply reaches.
func TestApplyBatchConcurrent(t *testing.T) {
	var all []*persona.Event
	var ids []string
	for i, sc := range scenarios() {
		// Events about an inquiry's parts count only once the record exists, which depends
		// on the order of arrival (see TestApplyOrderIndependent): left out here.
		var events []*persona.Event
		for _, e := range sc.events {
			if e.Inquiry != nil {
				events = append(events, e)
			}
		}
		for n := range 6 {
			id := fmt.Sprintf("inq_%d_%d", i, n)
			ids = append(ids, id)
			all = append(all, forInquiry(events, id)...)
			// Persona's retries: some events arrive twice.
			all = append(all, forInquiry(events[:1], id)...)
		}
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	ctx := context.Background()
	serial := newFixture(t)
	for _, e := range all {
		serial.apply(t, e)
	}

	concurrent := newFixture(t)
	const workers, batch = 6, 7
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var mine []*persona.Event
			for i := w; i < len(all); i += workers {
				mine = append(mine, all[i])
			}
			for len(mine) > 0 {
				n := min(batch, len(mine))
				results, err := concurrent.store.ApplyBatch(ctx, mine[:n])
				if err != nil {
					t.Errorf("ApplyBatch: %v", err)
					return
				}
				for i, r := range results {
					if r.Err != nil || r.Outcome == "" {
						t.Errorf("event %s: %+v", mine[i].ID, r)
					}
				}
				mine = mine[n:]
			}
		})
	}
	wg.Wait()

	for _, id := range ids {
		want, got := serial.inquiry(t, id), concurrent.inquiry(t, id)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("inquiry %s:\n concurrent %+v\n     serial %+v", id, *got, *want)
		}
		ws, wok := serial.inExpiry(t, id)
		gs, gok := concurrent.inExpiry(t, id)
		if ws != gs || wok != gok {
			t.Errorf("inquiry %s expiry index: concurrent %v %v, serial %v %v", id, gs, gok, ws, wok)
		}
	}
	if got, want := concurrent.counts(t), serial.counts(t); !reflect.DeepEqual(got, want) {
		t.Errorf("CountByStatus: concurrent %v, serial %v", got, want)
	}
}

// TestApplyBatchRedisDown: with Redis stopped the batch fails as a whole (no per-event
// results) and works again once Redis is back, the restarted server having lost the script.
func TestApplyBatchRedisDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	f := fixtureOn(t, client, testenv.Prefix(t))
	ctx := context.Background()
	events := forInquiry(scenarios()[0].events, "inq_down")

	if _, err := f.store.ApplyBatch(ctx, events[:2]); err != nil {
		t.Fatalf("ApplyBatch before stop: %v", err)
	}
	srv.Stop()
	results, err := f.store.ApplyBatch(ctx, events[2:])
	if err == nil || results != nil {
		t.Fatalf("ApplyBatch with redis down = %v, %v; want an error and no results", results, err)
	}
	if err := f.store.Ping(ctx); err == nil {
		t.Error("Ping with redis down succeeded")
	}
	srv.Restart(t)
	results, err = f.store.ApplyBatch(ctx, events)
	if err != nil {
		t.Fatalf("ApplyBatch after restart: %v", err)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Errorf("results[%d]: %v", i, r.Err)
		}
	}
	if got := f.inquiry(t, "inq_down"); got.Status != persona.StatusCompleted {
		t.Errorf("status after restart = %s, want completed", got.Status)
	}
}

// TestApplyBatchNoScript: after SCRIPT FLUSH the store loads the script again.
func TestApplyBatchNoScript(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	f := fixtureOn(t, client, testenv.Prefix(t))
	ctx := context.Background()
	events := forInquiry(scenarios()[1].events, "inq_flush")
	for i, e := range events {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		results, err := f.store.ApplyBatch(ctx, []*persona.Event{e, e})
		if err != nil {
			t.Fatalf("ApplyBatch %d: %v", i, err)
		}
		if results[0].Err != nil || results[1].Outcome != OutcomeDuplicate {
			t.Errorf("ApplyBatch %d: %+v", i, results)
		}
	}
	if n, err := f.store.Purge(ctx, 10); err != nil || n != 0 {
		t.Errorf("Purge = %d, %v", n, err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Purge(ctx, 10); err != nil {
		t.Errorf("Purge after flush: %v", err)
	}
}
