package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// Defaults of Options.
const (
	DefaultInterval  = 15 * time.Minute
	DefaultLookback  = 48 * time.Hour
	DefaultOverlap   = 5 * time.Minute
	DefaultBatchSize = 100
	DefaultLeaseTTL  = 2 * time.Minute
	// LeaseName names the lease and the checkpoint in the store.
	LeaseName = "reconcile"
)

// DefaultEventNames are the inquiry events the replay asks Persona for (PERSONA.md §4).
func DefaultEventNames() []string {
	return []string{
		"inquiry.created", "inquiry.started", "inquiry.completed", "inquiry.failed",
		"inquiry.expired", "inquiry.marked-for-review", "inquiry.approved", "inquiry.declined",
		"inquiry.redacted", "inquiry.transitioned",
	}
}

// Persona is what reconciliation asks Persona; *persona.Client implements it.
type Persona interface {
	// ListEvents iterates over past events, newest first.
	ListEvents(ctx context.Context, f persona.EventFilter) iter.Seq2[*persona.ListedEvent, error]
	// InquiriesByID reads up to 100 inquiries in one call, with a sparse fieldset.
	InquiriesByID(ctx context.Context, ids []string, fields ...string) ([]*persona.Inquiry, error)
}

// Store is what reconciliation needs of the state store; *state.Store implements it.
type Store interface {
	OpenInquiries(ctx context.Context, cursor state.OpenCursor, limit int) ([]*state.Inquiry, state.OpenCursor, bool, error)
	AcquireLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error)
	RenewLease(ctx context.Context, name, token string, ttl time.Duration) error
	ReleaseLease(ctx context.Context, name, token string) error
	Checkpoint(ctx context.Context, name string) (map[string]string, error)
	SaveCheckpoint(ctx context.Context, name, token string, fields map[string]string) error
}

// Publisher stores a message in JetStream and returns its PubAck; jetstream.JetStream
// satisfies it.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Options configure New. Store and Persona are required; Publisher and Stream too, except
// for dry runs.
type Options struct {
	Store   Store
	Persona Persona
	// Publisher and Stream: where replayed and synthetic events go (the events stream the
	// webhook receiver publishes to).
	Publisher Publisher
	Stream    string
	// Subjects is the deployment's subject scheme (RESUMER_SUBJECT_PREFIX); the zero value
	// is eventstream's default prefix.
	Subjects eventstream.Subjects
	// Interval is the time between two passes of Run (jittered by up to a tenth);
	// DefaultInterval when zero.
	Interval time.Duration
	// Lookback is how far back the first replay reads when no checkpoint exists;
	// DefaultLookback when zero. Keep it within the store's event memory.
	Lookback time.Duration
	// Overlap is how far before its checkpoint a replay starts again, for events Persona
	// lists late; DefaultOverlap when zero.
	Overlap time.Duration
	// BatchSize is the number of inquiries re-checked per Persona call, at most 100;
	// DefaultBatchSize when zero.
	BatchSize int
	// LeaseTTL is the lease on the reconciliation work; it is renewed every third of it.
	// DefaultLeaseTTL when zero.
	LeaseTTL time.Duration
	// EventNames are the events replayed; DefaultEventNames when empty.
	EventNames []string
	// PublishTimeout bounds one publish attempt; 5 s when zero.
	PublishTimeout time.Duration
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Reconciler runs reconciliation passes; see the package documentation. It is safe for
// concurrent use, but passes of all replicas are serialised by the lease.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
}

// New returns a Reconciler. It fails when Store or Persona is missing, BatchSize is over 100,
// or a duration is negative.
func New(opts Options) (*Reconciler, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("create reconciler: Options.Store is nil")
	case opts.Persona == nil:
		return nil, errors.New("create reconciler: Options.Persona is nil")
	case opts.BatchSize < 0 || opts.BatchSize > 100:
		return nil, fmt.Errorf("create reconciler: batch size %d: want 1 to 100", opts.BatchSize)
	case opts.Interval < 0 || opts.Lookback < 0 || opts.Overlap < 0 || opts.LeaseTTL < 0 || opts.PublishTimeout < 0:
		return nil, errors.New("create reconciler: negative duration")
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Lookback == 0 {
		opts.Lookback = DefaultLookback
	}
	if opts.Overlap == 0 {
		opts.Overlap = DefaultOverlap
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if len(opts.EventNames) == 0 {
		opts.EventNames = DefaultEventNames()
	}
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := newMetrics(opts.Registerer)
	m.interval.Set(opts.Interval.Seconds())
	return &Reconciler{opts: opts, log: opts.Logger.With("component", "reconcile"), metrics: m}, nil
}

// PassOptions shape one pass.
type PassOptions struct {
	// Since, when positive, replays the events of that long ago until now instead of
	// continuing from the checkpoint, and re-checks every open inquiry from the start.
	Since time.Duration
	// DryRun reads and compares but publishes nothing and moves no checkpoint.
	DryRun bool
}

// Report is what one pass found and did.
type Report struct {
	// Skipped: another replica held the lease; nothing was done.
	Skipped bool
	// EventsFrom is the created-at the replay started from.
	EventsFrom time.Time
	// EventPages and InquiryPages count the Persona calls of each part.
	EventPages, InquiryPages int
	// EventsSeen counts the events listed; EventsPublished those stored in the stream as new,
	// EventsDuplicate those the stream already had, EventsUnparsed those not readable as
	// inquiry events (not published).
	EventsSeen, EventsPublished, EventsDuplicate, EventsUnparsed int
	// Checked counts the open inquiries re-checked.
	Checked int
	// Differences are the differences found, in publication (updated-at) order.
	Differences []Difference
	// Missing lists tracked inquiries Persona did not return.
	Missing []string
}

// PersonaCalls is the number of Persona API pages the pass read (retries not counted).
func (r *Report) PersonaCalls() int { return r.EventPages + r.InquiryPages }

// Difference is one tracked inquiry whose state differs from Persona's.
type Difference struct {
	InquiryID string
	// Kind is "status" or "expiry".
	Kind string
	// Tracked and Current are the status resumer holds and the one Persona reports.
	Tracked, Current persona.Status
	// TrackedExpiresAt and CurrentExpiresAt likewise for expires-at.
	TrackedExpiresAt, CurrentExpiresAt time.Time
	// UpdatedAt is Persona's updated-at, the synthetic event's time.
	UpdatedAt time.Time
	// EventID and EventName are those of the synthetic event.
	EventID, EventName string
}

// ErrBusy is returned by Pass when another replica holds the reconciliation lease.
var ErrBusy = errors.New("reconciliation is running on another replica")

// Run runs a pass every Interval until ctx ends, then returns nil. A replica that does not
// get the lease skips that pass; a failed pass is logged and counted and the next one
// continues from its checkpoint.
func (r *Reconciler) Run(ctx context.Context) error {
	r.log.Info("reconciliation started", "interval", r.opts.Interval.String())
	for {
		report, err := r.Pass(ctx, PassOptions{})
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrBusy):
			r.log.Debug("reconciliation skipped: another replica holds the lease")
		case err != nil:
			r.log.Warn("reconciliation pass failed; the next continues from its checkpoint", "err", err.Error())
		default:
			r.log.Info("reconciliation pass done", "event_pages", report.EventPages, "events_published", report.EventsPublished,
				"checked", report.Checked, "differences", len(report.Differences), "missing", len(report.Missing))
		}
		wait := r.opts.Interval + time.Duration(mrand.Int64N(int64(r.opts.Interval/10)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Pass runs one pass: replay, then re-check. It holds the lease throughout (a dry run takes
// none and changes nothing). The error wraps ErrBusy when another replica holds the lease,
// state.ErrSingletonLost when the lease was lost during the pass, or is the Persona, Redis or
// JetStream failure that stopped it; the report then says what was done until then, and the
// checkpoint lets the next pass continue.
func (r *Reconciler) Pass(ctx context.Context, po PassOptions) (report *Report, err error) {
	report = &Report{}
	p := &pass{r: r, opts: po, report: report}
	if !po.DryRun {
		if r.opts.Publisher == nil {
			return report, errors.New("reconcile: no publisher (only a dry run can do without)")
		}
		token := newToken()
		ok, err := r.opts.Store.AcquireLease(ctx, LeaseName, token, r.opts.LeaseTTL)
		if err != nil {
			r.metrics.passes.WithLabelValues(passFailed).Inc()
			return report, fmt.Errorf("reconcile: %w", err)
		}
		if !ok {
			report.Skipped = true
			r.metrics.passes.WithLabelValues(passSkipped).Inc()
			return report, ErrBusy
		}
		p.token = token
		var stop func() error
		ctx, stop = r.keepLease(ctx, token)
		defer func() {
			if lost := stop(); lost != nil {
				err = fmt.Errorf("reconcile: %w", lost)
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if rerr := r.opts.Store.ReleaseLease(rctx, LeaseName, token); rerr != nil {
				r.log.Warn("release reconciliation lease", "err", rerr.Error())
			}
		}()
	}
	if err := p.run(ctx); err != nil {
		r.metrics.passes.WithLabelValues(passFailed).Inc()
		return report, fmt.Errorf("reconcile: %w", err)
	}
	r.metrics.passes.WithLabelValues(passOK).Inc()
	if !po.DryRun {
		r.metrics.lastSuccess.Set(float64(r.opts.Now().Unix()))
	}
	return report, nil
}

// keepLease renews the lease every third of its TTL until stop is called; when a renewal
// finds the lease lost, it cancels the returned context. stop returns the loss, if any.
func (r *Reconciler) keepLease(ctx context.Context, token string) (context.Context, func() error) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(r.opts.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := r.opts.Store.RenewLease(ctx, LeaseName, token, r.opts.LeaseTTL)
			if errors.Is(err, state.ErrSingletonLost) {
				r.log.Warn("reconciliation lease lost; stopping the pass")
				cancel(err)
				return
			}
			if err != nil && ctx.Err() == nil {
				r.log.Warn("renew reconciliation lease", "err", err.Error())
			}
		}
	}()
	return ctx, func() error {
		close(done)
		<-finished
		err := context.Cause(ctx)
		cancel(nil)
		if errors.Is(err, state.ErrSingletonLost) {
			return err
		}
		return nil
	}
}

func newToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
