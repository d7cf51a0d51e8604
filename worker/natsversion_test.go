package worker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

// TestConsumerOnDebianNATS runs the worker against Debian's nats-server (2.9, the oldest the
// README supports), which refuses a consumer BackOff list unless MaxDeliver exceeds its length:
// with every MaxDeliver from 1 to 5, and with a consumer left by an older release (MaxDeliver
// 10 with a BackOff list), the worker creates or updates its consumer, becomes ready and
// applies an event.
func TestConsumerOnDebianNATS(t *testing.T) {
	bin := testenv.StartNATSBinary(t)
	t.Logf("nats-server %s", bin.Version)
	nc, err := nats.Connect(bin.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testenv.Redis(t)
	e := &env{t: t, nc: nc, js: js, stream: "EV_" + prefix, dlq: "DLQ_" + prefix, rdb: rdb, store: newStore(t, rdb, prefix)}
	ctx := context.Background()
	stream, err := eventstream.Ensure(ctx, js, eventstream.Config{Name: e.stream})
	if err != nil {
		t.Fatal(err)
	}
	// The consumer an earlier release created: BackOff list and MaxDeliver 10.
	if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "legacy", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxDeliver: 10,
		BackOff: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 10 * time.Second, 20 * time.Second},
	}); err != nil {
		t.Fatalf("legacy consumer: %v", err)
	}
	cases := []struct {
		durable    string
		maxDeliver int
	}{{"md1", 1}, {"md2", 2}, {"md3", 3}, {"md4", 4}, {"md5", 5}, {"legacy", 10}}
	for i, c := range cases {
		t.Run(c.durable, func(t *testing.T) {
			opts := e.options(e.store)
			opts.Durable = c.durable
			opts.MaxDeliver = c.maxDeliver
			r := start(t, opts)
			eventually(t, 10*time.Second, "worker ready", func() bool { return r.w.Ready() == nil })
			id := fmt.Sprintf("inq_v%d", i)
			e.publishEvent(t, testEvent{ID: "evt_" + c.durable, Name: "inquiry.created", InquiryID: id,
				Status: persona.StatusCreated, At: testNow.Add(-time.Hour)})
			eventually(t, 10*time.Second, "event applied", func() bool {
				inq := inquiry(t, e.store, id)
				return inq != nil && inq.Status == persona.StatusCreated
			})
			info := e.consumerInfo(t, c.durable)
			if info.Config.MaxDeliver != -1 || len(info.Config.BackOff) != 0 {
				t.Errorf("consumer config: MaxDeliver %d, BackOff %v", info.Config.MaxDeliver, info.Config.BackOff)
			}
		})
	}
}

// TestWorkerReportsRefusedConsumer gives the worker a consumer configuration the server
// refuses (a durable name that clashes with an existing consumer of another kind: a push
// consumer with the worker's name): the worker logs the server's reason, stays not ready, and
// keeps trying; once the obstacle is gone it consumes.
func TestWorkerReportsRefusedConsumer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, e.stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy, DeliverSubject: "push." + e.stream,
	}); err != nil {
		t.Fatal(err)
	}
	w, logs, _ := startLogged(t, e.options(e.store))
	eventually(t, 10*time.Second, "the refusal logged", func() bool {
		return strings.Contains(logs.String(), "worker cannot consume, retrying")
	})
	err = w.Ready()
	if err == nil || !strings.Contains(err.Error(), "create consumer") {
		t.Fatalf("Ready = %v, want the server's refusal", err)
	}
	t.Logf("Ready: %v", err)
	if !strings.Contains(logs.String(), "err=") {
		t.Errorf("the log does not carry the server's reason:\n%s", logs.String())
	}
	if err := stream.DeleteConsumer(ctx, DefaultDurable); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "ready once the server accepts the consumer", func() bool { return w.Ready() == nil })
	e.publishEvent(t, testEvent{ID: "evt_rc", Name: "inquiry.created", InquiryID: "inq_rc", Status: persona.StatusCreated, At: testNow})
	eventually(t, 10*time.Second, "event applied", func() bool { return inquiry(t, e.store, "inq_rc") != nil })
}
