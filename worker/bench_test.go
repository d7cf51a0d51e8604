package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
)

// BenchmarkWorker measures how fast one worker applies events to the real store on the test
// Redis: "backlog" starts it on b.N stored events, "live" publishes while it runs (the
// receiver's situation). Each op is one event.
//
//	go test -run '^$' -bench BenchmarkWorker -benchtime 20000x ./worker
func BenchmarkWorker(b *testing.B) {
	for _, mode := range []string{"backlog", "live"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			bodies := make([][]byte, b.N)
			at := testNow.Add(-time.Hour)
			for i := range bodies {
				bodies[i] = eventBody(b, testEvent{ID: fmt.Sprintf("evt_bench%d", i), Name: "inquiry.started",
					InquiryID: fmt.Sprintf("inq_bench%d", i%5000), Status: persona.StatusPending, At: at.Add(time.Duration(i) * time.Millisecond)})
			}
			publishAll := func() {
				for i, body := range bodies {
					m := nats.NewMsg(eventstream.Subject("inquiry.started"))
					m.Data = body
					m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("evt_bench%d", i))
					if _, err := e.js.PublishMsgAsync(m); err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-e.js.PublishAsyncComplete():
				case <-time.After(time.Minute):
					b.Fatal("publish did not complete")
				}
			}
			if mode == "backlog" {
				publishAll()
			}
			counter := &countingApplier{next: e.store}
			opts := e.options(counter)
			b.ResetTimer()
			start(b, opts)
			if mode == "live" {
				publishAll()
			}
			eventually(b, 5*time.Minute, "all applied", func() bool {
				info, err := consumerInfo(e.js, e.stream)
				return err == nil && info.AckFloor.Stream == uint64(b.N)
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(counter.events.Load())/float64(counter.calls.Load()), "events/batch")
		})
	}
}

func consumerInfo(js jetstream.JetStream, stream string) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(context.Background(), stream, DefaultDurable)
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}
