package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/reconcile"
	"github.com/resumer/resumer/state"
)

// TestReplayFindsEverythingWebhooksMissed switches webhook delivery off for a while
// (PERSONA.md §2: an outage longer than Persona's retries), during which users finish,
// stall, expire and new inquiries begin. One pass replays the Events API: the store ends
// with every missed inquiry and completion, and nothing it already knew is applied twice.
func TestReplayFindsEverythingWebhooksMissed(t *testing.T) {
	p := newPipeline(t, personatest.Options{})
	ctx := context.Background()
	var known []string
	for i := range 6 {
		inq := p.sim.CreateInquiry(personatest.InquiryParams{ReferenceID: fmt.Sprintf("user-%d", i)})
		known = append(known, inq.ID)
		if i%2 == 0 {
			if err := p.sim.Start(inq.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.waitDelivered(t)
	p.waitStatus(t, map[string]persona.Status{known[0]: persona.StatusPending, known[1]: persona.StatusCreated,
		known[2]: persona.StatusPending, known[3]: persona.StatusCreated, known[4]: persona.StatusPending, known[5]: persona.StatusCreated})

	p.sim.SetWebhooks(false)
	must(t, p.sim.Complete(known[0])) // a completion never heard of
	must(t, p.sim.Complete(known[1])) // likewise, from created
	must(t, p.sim.Expire(known[2]))   // an expiry
	must(t, p.sim.Start(known[3]))    // a start
	fresh := p.sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "new-1"})
	must(t, p.sim.Start(fresh.ID)) // an inquiry resumer never heard of at all
	done := p.sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "new-2"})
	must(t, p.sim.Complete(done.ID)) // ... and one that began and finished in the outage
	p.sim.SetWebhooks(true)

	missed := 0
	for _, ev := range p.sim.Events() {
		if !ev.Delivered {
			missed++
		}
	}
	r := p.reconciler(t, nil)
	report, err := r.Pass(ctx, reconcile.PassOptions{})
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	want := map[string]persona.Status{
		known[0]: persona.StatusCompleted, known[1]: persona.StatusCompleted, known[2]: persona.StatusExpired,
		known[3]: persona.StatusPending, known[4]: persona.StatusPending, known[5]: persona.StatusCreated,
		fresh.ID: persona.StatusPending, done.ID: persona.StatusCompleted,
	}
	p.waitStatus(t, want)
	total := len(p.sim.Events())
	if report.EventsSeen != total {
		t.Errorf("replay saw %d events, want all %d the Events API lists", report.EventsSeen, total)
	}
	// The events delivered before the outage are JetStream duplicates (same Nats-Msg-Id); the
	// missed ones are new.
	if report.EventsPublished != missed || report.EventsDuplicate != total-missed {
		t.Errorf("published %d, duplicate %d; want %d missed events published and %d duplicates",
			report.EventsPublished, report.EventsDuplicate, missed, total-missed)
	}
	if report.EventPages != 1 {
		t.Errorf("event pages = %d, want 1 (%d events fit one page of 100)", report.EventPages, total)
	}
	// The worker counted the replayed events by their source.
	waitCounter(t, func() float64 {
		return metricValue(t, p, "resumer_worker_events_by_source_total", "source", eventstream.SourceReplay)
	}, float64(missed))

	// A second pass continues from the checkpoint: with nothing new, it replays nothing new.
	again, err := r.Pass(ctx, reconcile.PassOptions{})
	if err != nil {
		t.Fatalf("second Pass: %v", err)
	}
	if again.EventsPublished != 0 || len(again.Differences) != 0 {
		t.Errorf("second pass published %d events and found %d differences, want none", again.EventsPublished, len(again.Differences))
	}
}

// TestRecheckAppliesDifferencesAsSyntheticEvents leaves the replay nothing to find (it asks
// for an event name nobody sends), so only the re-check of open inquiries can notice that
// users finished or that an expiry moved. Each difference becomes a synthetic event, applied
// by the worker; finished inquiries leave the open set, so no reminder can reach them.
func TestRecheckAppliesDifferencesAsSyntheticEvents(t *testing.T) {
	p := newPipeline(t, personatest.Options{})
	ctx := context.Background()
	var ids []string
	want := map[string]persona.Status{}
	for i := range 12 {
		inq := p.sim.CreateInquiry(personatest.InquiryParams{ReferenceID: fmt.Sprintf("user-%d", i)})
		must(t, p.sim.Start(inq.ID))
		ids = append(ids, inq.ID)
		want[inq.ID] = persona.StatusPending
	}
	p.waitDelivered(t)
	p.waitStatus(t, want)

	p.sim.SetWebhooks(false)
	must(t, p.sim.Complete(ids[0]))
	must(t, p.sim.Fail(ids[1]))
	must(t, p.sim.Expire(ids[2]))
	later := p.sim.Now().Add(72 * time.Hour)
	must(t, p.sim.SetExpiresAt(ids[3], later)) // no event: only the re-check can see it
	want[ids[0]], want[ids[1]], want[ids[2]] = persona.StatusCompleted, persona.StatusFailed, persona.StatusExpired

	before := len(p.sim.RequestLog())
	r := p.reconciler(t, func(o *reconcile.Options) {
		o.EventNames = []string{"inquiry.nothing"}
	})
	report, err := r.Pass(ctx, reconcile.PassOptions{})
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	if report.Checked != 12 {
		t.Errorf("checked %d inquiries, want 12", report.Checked)
	}
	if report.InquiryPages != 1 {
		t.Errorf("inquiry pages = %d, want 1", report.InquiryPages)
	}
	kinds := map[string]string{}
	for _, d := range report.Differences {
		kinds[d.InquiryID] = d.Kind
		if !strings.HasPrefix(d.EventID, eventstream.SyntheticIDPrefix) {
			t.Errorf("synthetic event id %q lacks the prefix", d.EventID)
		}
	}
	wantKinds := map[string]string{ids[0]: "status", ids[1]: "status", ids[2]: "status", ids[3]: "expiry"}
	if fmt.Sprint(kinds) != fmt.Sprint(wantKinds) {
		t.Errorf("differences = %v, want %v", kinds, wantKinds)
	}
	for i := 1; i < len(report.Differences); i++ {
		if report.Differences[i].UpdatedAt.Before(report.Differences[i-1].UpdatedAt) {
			t.Errorf("differences not in updated-at order: %v", report.Differences)
		}
	}
	p.waitStatus(t, want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		inq, err := p.store.Inquiry(ctx, ids[3])
		if err == nil && inq.ExpiresAt.Equal(later) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expires-at of %s never became %v: %+v, %v", ids[3], later, inq, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Finished inquiries are no longer open: the notifier's sweep, which reads the same
	// expiry index, cannot claim them.
	open, _, _, err := p.store.OpenInquiries(ctx, state.OpenCursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, inq := range open {
		if inq.ID == ids[0] || inq.ID == ids[1] || inq.ID == ids[2] {
			t.Errorf("%s still open (%s) after reconciliation", inq.ID, inq.Status)
		}
	}
	// The re-check asked with a sparse fieldset, so no personal data travelled.
	for _, rec := range p.sim.RequestLog()[before:] {
		if rec.Path == "/api/v1/inquiries" && !strings.Contains(rec.RawQuery, "fields%5Binquiry%5D=status%2Cexpires-at%2Cupdated-at") {
			t.Errorf("re-check without the sparse fieldset: %s", rec.RawQuery)
		}
	}
	waitCounter(t, func() float64 {
		return metricValue(t, p, "resumer_worker_events_by_source_total", "source", eventstream.SourceSynthetic)
	}, 4)
}

// TestPassContinuesFromItsCheckpoint interrupts a pass (Persona fails every call after the
// first pages) and checks that the next pass continues the replay after the last page done
// rather than from the beginning, and finishes the walk.
func TestPassContinuesFromItsCheckpoint(t *testing.T) {
	p := newPipeline(t, personatest.Options{})
	ctx := context.Background()
	p.sim.SetWebhooks(false)
	want := map[string]persona.Status{}
	for i := range 130 { // 130 created events: two pages of 100
		inq := p.sim.CreateInquiry(personatest.InquiryParams{ReferenceID: fmt.Sprintf("u-%d", i)})
		want[inq.ID] = persona.StatusCreated
	}
	client, err := persona.NewClient(persona.ClientOptions{
		BaseURL: p.sim.URL(), APIKey: p.sim.APIKey(), MaxElapsed: time.Millisecond,
		InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := p.reconciler(t, func(o *reconcile.Options) { o.Persona = &failAfter{Client: client, sim: p.sim, calls: 1} })
	report, err := r.Pass(ctx, reconcile.PassOptions{})
	if err == nil {
		t.Fatal("Pass succeeded although Persona failed the second page")
	}
	if report.EventsPublished != 100 {
		t.Fatalf("interrupted pass published %d events, want the first page's 100", report.EventsPublished)
	}
	p.sim.FailNext(0, 0)
	r = p.reconciler(t, nil)
	report, err = r.Pass(ctx, reconcile.PassOptions{})
	if err != nil {
		t.Fatalf("second Pass: %v", err)
	}
	if report.EventsSeen != 30 || report.EventsPublished != 30 {
		t.Errorf("continued pass saw %d and published %d events, want the remaining 30", report.EventsSeen, report.EventsPublished)
	}
	p.waitStatus(t, want)
	// Once the worker has applied the replay, a pass re-checks all 130 in two calls.
	if report, err = r.Pass(ctx, reconcile.PassOptions{}); err != nil {
		t.Fatal(err)
	}
	if report.Checked != 130 || report.InquiryPages != 2 || report.EventsPublished != 0 {
		t.Errorf("third pass: checked %d in %d calls, published %d events; want 130 in 2 calls, none published",
			report.Checked, report.InquiryPages, report.EventsPublished)
	}
}

// failAfter makes Persona fail every call after the first calls ones.
type failAfter struct {
	*persona.Client
	sim   *personatest.Server
	calls int
}

func (f *failAfter) ListEvents(ctx context.Context, fl persona.EventFilter) iter.Seq2[*persona.ListedEvent, error] {
	return func(yield func(*persona.ListedEvent, error) bool) {
		for le, err := range f.Client.ListEvents(ctx, fl) {
			if !yield(le, err) {
				return
			}
			if err == nil && le.Page == f.calls && f.calls > 0 {
				// The next page will fail, and keep failing for this pass.
				f.sim.FailNext(1000, 503)
				f.calls = -1
			}
		}
	}
}

// TestOneReplicaAtATime: a pass while another replica holds the lease is skipped.
func TestOneReplicaAtATime(t *testing.T) {
	p := newPipeline(t, personatest.Options{})
	ctx := context.Background()
	ok, err := p.store.AcquireLease(ctx, reconcile.LeaseName, "other-replica", time.Minute)
	if err != nil || !ok {
		t.Fatalf("AcquireLease: %v %v", ok, err)
	}
	report, err := p.reconciler(t, nil).Pass(ctx, reconcile.PassOptions{})
	if !errors.Is(err, reconcile.ErrBusy) || !report.Skipped {
		t.Fatalf("Pass under another's lease = %+v, %v; want skipped, ErrBusy", report, err)
	}
	if n := len(p.sim.RequestLog()); n != 0 {
		t.Errorf("skipped pass made %d Persona calls", n)
	}
	// A dry run needs no lease and changes nothing.
	p.sim.SetWebhooks(false)
	inq := p.sim.CreateInquiry(personatest.InquiryParams{})
	report, err = p.reconciler(t, nil).Pass(ctx, reconcile.PassOptions{DryRun: true, Since: time.Hour})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if report.EventsSeen != 1 || report.EventsPublished != 0 {
		t.Errorf("dry run saw %d and published %d events, want 1 and 0", report.EventsSeen, report.EventsPublished)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := p.store.Inquiry(ctx, inq.ID); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("dry run changed the store: %v", err)
	}
}

// TestReconcileStallMetrics: the metrics ResumerReconcileStalled reads. The configured
// interval is exported from the start; the last success stays 0 through a dry run and a pass
// skipped for another replica's lease, and is the pass's end once one completes.
func TestReconcileStallMetrics(t *testing.T) {
	p := newPipeline(t, personatest.Options{})
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	r := p.reconciler(t, func(o *reconcile.Options) {
		o.Interval = 10 * time.Minute
		o.Now = func() time.Time { return now }
	})
	lastSuccess := func() float64 {
		return metricValue(t, p, "resumer_reconcile_last_success_timestamp_seconds", "", "")
	}
	if got := metricValue(t, p, "resumer_reconcile_interval_seconds", "", ""); got != 600 {
		t.Errorf("resumer_reconcile_interval_seconds = %v, want 600 (Interval 10m)", got)
	}
	if _, err := r.Pass(ctx, reconcile.PassOptions{DryRun: true, Since: time.Hour}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if got := lastSuccess(); got != 0 {
		t.Errorf("last success after a dry run = %v, want 0 (a dry run reconciles nothing)", got)
	}
	ok, err := p.store.AcquireLease(ctx, reconcile.LeaseName, "other-replica", time.Minute)
	if err != nil || !ok {
		t.Fatalf("AcquireLease: %v %v", ok, err)
	}
	if _, err := r.Pass(ctx, reconcile.PassOptions{}); !errors.Is(err, reconcile.ErrBusy) {
		t.Fatalf("Pass under another's lease: %v, want ErrBusy", err)
	}
	if got := lastSuccess(); got != 0 {
		t.Errorf("last success after a skipped pass = %v, want 0", got)
	}
	must(t, p.store.ReleaseLease(ctx, reconcile.LeaseName, "other-replica"))
	if _, err := r.Pass(ctx, reconcile.PassOptions{}); err != nil {
		t.Fatalf("Pass: %v", err)
	}
	if got, want := lastSuccess(), float64(now.Unix()); got != want {
		t.Errorf("last success after a pass = %v, want %v (the pass's end)", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
