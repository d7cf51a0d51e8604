package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// Defaults of SchedulerOptions.
const (
	DefaultMinRemaining = 15 * time.Minute
	DefaultInterval     = 15 * time.Second
	DefaultLease        = 2 * time.Minute
	DefaultConcurrency  = 8
	DefaultClaimLimit   = 100
)

// Retry backoff of a reminder after a transient failure: RetryInitial doubled per attempt up
// to RetryMax (jittered by ±10%), never later than MinRemaining before the expiry.
const (
	RetryInitial = 30 * time.Second
	RetryMax     = 10 * time.Minute
)

// ReminderClaimer claims due reminders with a lease, soonest expiry first, and counts the
// unclaimed backlog; see state.Store.ClaimDue and state.Store.DueBacklog for the contract.
type ReminderClaimer interface {
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]state.Claim, error)
	DueBacklog(ctx context.Context, now time.Time) (int64, error)
}

// ClaimSettler records a send intent and settles a claim while its lease is held; each
// method fails with state.ErrLeaseLost once it is not. See state.Store for the contract.
type ClaimSettler interface {
	RecordIntent(ctx context.Context, c state.Claim, stage string) error
	CompleteReminder(ctx context.Context, c state.Claim, stage string, skipped []string) error
	ReleaseClaim(ctx context.Context, c state.Claim, retryAt time.Time, marks ...string) error
	DropReminders(ctx context.Context, c state.Claim, reason string) error
}

// ReminderStore is what the scheduler needs of the state store; *state.Store implements it.
type ReminderStore interface {
	ReminderClaimer
	ClaimSettler
}

// PersonaBudget is the Persona rate budget every replica shares (*state.RateLimiter): the
// scheduler claims no more reminders than it has grants left, so that no claim waits out
// its lease for one.
type PersonaBudget interface {
	// Available returns the grants left now and, when none is, how long until one frees up.
	Available(ctx context.Context) (int, time.Duration, error)
	// PerHour is the number of grants in an hour, for the forecast gauge.
	PerHour() float64
}

// Persona is the part of the Persona API client (*persona.Client) the scheduler calls to mint
// links; errors are classified with the persona package's sentinels.
type Persona interface {
	Resume(ctx context.Context, inquiryID string) (*persona.Session, error)
	GenerateOneTimeLink(ctx context.Context, inquiryID string) (string, *persona.Inquiry, error)
}

// SchedulerOptions configures a Scheduler. Store and Channels are required; Persona too unless
// LinkMode is LinkRedirect, which needs Redirect instead.
type SchedulerOptions struct {
	// Store holds the reminder schedule (a *state.Store).
	Store ReminderStore
	// Persona mints session tokens (LinkSessionToken) or one-time links (LinkOneTimeLink).
	Persona Persona
	// Channels deliver every reminder, in order; a stage is done when every channel is done
	// with it. Names must be distinct and free of ',', '@' and ':'. A channel named "email"
	// (EmailChannel) needs the inquiry's e-mail address: without one it is no_contact at
	// once, before any link is minted.
	Channels []Channel
	// Stages are the reminder stages, due that long before expiry; state.DefaultRemindBefore
	// when empty. They must equal the store's Config.RemindBefore, which schedules them.
	Stages []time.Duration
	// MinRemaining: an inquiry with less time left gets no reminder (skipped_too_late);
	// DefaultMinRemaining when zero.
	MinRemaining time.Duration
	// MaxAge drops the reminders of inquiries created longer ago (OutcomeTooOld): they are
	// not resumed any more, since a newer template version may have been published.
	// DefaultMaxAge when zero, none when negative; MaxAgeByTemplate overrides it per
	// template id (RESUMER_RESUME_MAX_AGE, RESUMER_RESUME_MAX_AGE_BY_TEMPLATE).
	MaxAge           time.Duration
	MaxAgeByTemplate map[string]time.Duration
	// Interval is the time between sweeps of Run, jittered by ±10%; DefaultInterval when zero.
	Interval time.Duration
	// Lease is how long a claim is exclusive, on Redis's clock; a claim not settled by then is
	// taken over by any replica. DefaultLease when zero. Minting and sending must be done by
	// half of it (measured from before the claim call), and settling is retried until a tenth
	// of it is left.
	Lease time.Duration
	// Concurrency is the number of send slots: the claims handled at once per scheduler, and
	// the most it holds; DefaultConcurrency when zero.
	Concurrency int
	// ClaimLimit caps the claims of one ClaimDue call; DefaultClaimLimit when zero. A
	// scheduler claims no more than its free send slots and the Budget's grants left.
	ClaimLimit int
	// Recheck and RecheckAfter: before reminding about an inquiry whose newest event is
	// older than RecheckAfter, the sweep asks Persona for its current status, 100 claims per
	// call (InquiriesByID with a sparse fieldset), and drops the reminders of those Persona
	// no longer lists as created/pending (a completion whose webhook never came). Zero
	// RecheckAfter or a nil Recheck checks nothing (RESUMER_RECHECK_AFTER).
	Recheck      Rechecker
	RecheckAfter time.Duration
	// Budget is the shared Persona budget (session-token and one-time-link modes); nil claims
	// by free slots alone and leaves the forecast gauge's budget unset.
	Budget PersonaBudget
	// LinkMode chooses the link (DESIGN.md decision 7); LinkSessionToken when empty.
	LinkMode LinkMode
	// HostedFlowURL is the base of LinkSessionToken links; link.DefaultHostedFlowURL when empty.
	HostedFlowURL string
	// RedirectURI, when set, is passed to the hosted flow as redirect-uri.
	RedirectURI string
	// Redirect signs the links of LinkRedirect; required in that mode.
	Redirect *link.Signer
	// Holdout holds a share of inquiries out of reminders, to measure the uplift; none when
	// zero.
	Holdout Holdout
	// Brands label the funnel counts of each reminder with the brand its inquiry gets
	// (brand.Set.For, as the e-mail channel picks it; a configured set, so the label stays
	// bounded); nil labels none.
	Brands *brand.Set
	// Now is the clock for due times, expiries and leases; time.Now when nil.
	Now func() time.Time
	// Logger gets a line per outcome other than sent (debug for sent); nothing secret or
	// personal is logged. Nothing when nil.
	Logger *slog.Logger
	// Registerer registers the scheduler's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

// Scheduler sends the reminders of DESIGN.md decisions 4 and 5. It claims due reminders
// (state.Store.ClaimDue: a lease whose end is on Redis's clock, soonest expiry first across
// all shards), only as many as it can finish within the lease: no more than its free send
// slots (Concurrency) and the shared Persona budget's grants left (Budget). It claims again
// as slots free up, so a backlog drains in deadline order and no claim waits out its lease.
// The claim is the atomic re-read of the inquiry just before sending. For each claim it:
//
//   - settles a stage whose send intent an earlier holder recorded before its lease ran out
//     as uncertain (OutcomeUncertain): done, never sent again (see below);
//   - drops an inquiry that is no longer created/pending (no reminder, no metric);
//   - finds the due stages (not done, expiry minus stage at or before now, no later stage
//     done); when several are due (the service was down or backlogged) only the one closest
//     to expiry goes out and the others are marked done as skipped_too_late; with less than
//     MinRemaining left none goes out (skipped_too_late);
//   - checks contact before minting: the "email" channel without an address is no_contact,
//     and when no channel can reach the user no token is minted (PERSONA.md §6: sessions are
//     capped per inquiry);
//   - mints the link once (a session token through Persona's resume, a one-time link, or a
//     signed redirect link without any Persona call), records the send intent under the
//     lease (state.Store.RecordIntent) and hands the Reminder to every channel not yet done
//     with the stage;
//   - skips the send of an inquiry in the holdout (SchedulerOptions.Holdout) at that same
//     point, recording the stage as done and every channel's outcome as held_out;
//   - settles the claim, retrying with backoff until a tenth of the lease is left.
//
// Every reminder sent or held out is counted in the recovery funnel (state.Attribution,
// through CompleteReminder), so that what the user does next is attributed to it.
//
// Each failure is classified once (Alertmanager style). Transient (Persona rate limited or
// unavailable, its API key refused, a channel answering retry=true, the claim's time running
// out): the claim is released with exponential backoff (RetryInitial doubled per attempt up
// to RetryMax, at least Persona's Retry-After, never later than MinRemaining before expiry),
// so a reminder is delayed but not lost. Permanent: Persona's 404/409 (not_resumable) drops
// the inquiry's reminders; a channel answering retry=false, or Persona rejecting the call
// (not_resumable aside), ends the stage as failed, with the reason logged.
//
// A stage is marked done only when every channel is done with it. When one channel
// delivered and another failed transiently, the first is recorded as done with the stage
// (state.ChannelMark) and the retry goes to the other alone, so nobody gets a duplicate.
//
// At most once per stage: a stage is sent only by the holder of the claim's lease, only
// after its send intent is recorded under that lease, and marked done with the lease's token.
// A holder that cannot record the intent sends nothing (an unused Persona session is reused
// by the next resume, PERSONA.md §6). A holder that sent but could not settle before its
// lease ran out (Redis down longer than the settle budget, the process killed) leaves the
// intent: the replica that takes the lease over settles the stage as uncertain and never
// sends it again. A channel that handed the reminder over without getting an answer
// (ErrMaybeDelivered) is not retried either: the stage is done for it, as uncertain. A stage
// is lost only when its holder dies between recording the intent and its channels' delivery,
// or the answer to a delivered message is lost, and that is counted as uncertain. Session tokens and links are
// never logged.
//
// Metrics (on SchedulerOptions.Registerer): resumer_reminders_total{stage,channel,outcome}
// (outcomes OutcomeSent ... OutcomeUncertain, counted per configured channel; all series
// exist from the start), resumer_reminder_due_backlog (due and unclaimed after the last
// sweep), resumer_reminder_due_next_hour and resumer_reminder_persona_budget_per_hour (the
// forecast: reminders due within the hour against the Persona budget), resumer_reminder_delay_seconds
// (from a stage's due time to its delivery), resumer_reminder_lease_expiries_total and
// resumer_notify_sweep_duration_seconds.
type Scheduler struct {
	store        ReminderStore
	persona      Persona
	budget       PersonaBudget
	recheck      Rechecker
	recheckAfter time.Duration
	channels     []Channel
	stages       []Stage // longest first
	minRemaining time.Duration
	maxAge       maxAge
	interval     time.Duration
	lease        time.Duration
	concurrency  int
	claimLimit   int
	mode         LinkMode
	hostedURL    string
	redirectURI  string
	redirect     *link.Signer
	holdout      Holdout
	brands       *brand.Set
	now          func() time.Time
	log          *slog.Logger
	metrics      schedulerMetrics
	// sendTime is the moving average of the time per claim (ns), for budgetCapacity.
	sendTime atomic.Int64
}

// NewScheduler checks opts and returns a Scheduler. It fails on a missing Store, Channels,
// Persona (session-token and one-time-link modes) or valid Redirect signer (redirect mode),
// an unknown link mode, duplicate or malformed channel names, stages that are not positive
// whole seconds or share a name, and negative durations or limits.
func NewScheduler(opts SchedulerOptions) (*Scheduler, error) {
	if opts.Store == nil {
		return nil, errors.New("new reminder scheduler: no store")
	}
	if len(opts.Channels) == 0 {
		return nil, errors.New("new reminder scheduler: no channels")
	}
	names := map[string]bool{}
	for _, ch := range opts.Channels {
		if ch == nil {
			return nil, errors.New("new reminder scheduler: nil channel")
		}
		n := ch.Name()
		if n == "" || strings.ContainsAny(n, ",@:") || names[n] {
			return nil, fmt.Errorf("new reminder scheduler: channel name %q is empty, duplicate or has ',', '@' or ':'", n)
		}
		names[n] = true
	}
	mode := cmp.Or(opts.LinkMode, LinkSessionToken)
	switch mode {
	case LinkSessionToken, LinkOneTimeLink:
		if opts.Persona == nil {
			return nil, fmt.Errorf("new reminder scheduler: link mode %s needs a persona client", mode)
		}
	case LinkRedirect:
		if opts.Redirect == nil {
			return nil, errors.New("new reminder scheduler: link mode redirect needs a redirect signer")
		}
		if err := opts.Redirect.Validate(); err != nil {
			return nil, fmt.Errorf("new reminder scheduler: %w", err)
		}
	default:
		return nil, fmt.Errorf("new reminder scheduler: unknown link mode %q", mode)
	}
	if err := opts.Holdout.Validate(); err != nil {
		return nil, fmt.Errorf("new reminder scheduler: %w", err)
	}
	stages, err := schedulerStages(opts.Stages)
	if err != nil {
		return nil, fmt.Errorf("new reminder scheduler: %w", err)
	}
	if opts.MinRemaining < 0 || opts.Interval < 0 || opts.Lease < 0 || opts.Concurrency < 0 || opts.ClaimLimit < 0 {
		return nil, errors.New("new reminder scheduler: durations and limits must not be negative")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		store:        opts.Store,
		persona:      opts.Persona,
		budget:       opts.Budget,
		recheck:      opts.Recheck,
		recheckAfter: opts.RecheckAfter,
		channels:     slices.Clone(opts.Channels),
		stages:       stages,
		minRemaining: cmp.Or(opts.MinRemaining, DefaultMinRemaining),
		maxAge:       maxAge{def: opts.MaxAge, byTemplate: opts.MaxAgeByTemplate},
		interval:     cmp.Or(opts.Interval, DefaultInterval),
		lease:        cmp.Or(opts.Lease, DefaultLease),
		concurrency:  cmp.Or(opts.Concurrency, DefaultConcurrency),
		claimLimit:   cmp.Or(opts.ClaimLimit, DefaultClaimLimit),
		mode:         mode,
		hostedURL:    opts.HostedFlowURL,
		redirectURI:  opts.RedirectURI,
		redirect:     opts.Redirect,
		holdout:      opts.Holdout,
		brands:       opts.Brands,
		now:          opts.Now,
		log:          log.With("component", "notify", "role", "scheduler"),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.metrics = newSchedulerMetrics(opts.Registerer, s.stages, s.channels)
	if s.budget != nil {
		s.metrics.budgetPerHour.Set(s.budget.PerHour())
	}
	return s, nil
}

// schedulerStages returns stages as Stage values, longest first; the state package's
// defaults when empty.
func schedulerStages(durations []time.Duration) ([]Stage, error) {
	if len(durations) == 0 {
		durations = state.DefaultRemindBefore()
	}
	stages := make([]Stage, 0, len(durations))
	seen := map[string]bool{}
	for _, d := range durations {
		if d <= 0 || d%time.Second != 0 {
			return nil, fmt.Errorf("reminder stage %v: want a positive whole number of seconds", d)
		}
		st := NewStage(d)
		if seen[st.Name] {
			return nil, fmt.Errorf("reminder stage %v: name %s given twice", d, st.Name)
		}
		seen[st.Name] = true
		stages = append(stages, st)
	}
	slices.SortFunc(stages, func(a, b Stage) int { return cmp.Compare(b.Before, a.Before) })
	return stages, nil
}

// Run sweeps until ctx ends, then returns nil: a sweep claims and sends until nothing is
// due, then Run waits Interval (jittered by ±10%), or less when the sweep stopped for the
// Persona budget. Sweep errors (Redis unreachable, a failed settle) are logged and the next
// sweep tries again; nothing is lost, because an unsettled claim is taken over when its
// lease runs out.
func (s *Scheduler) Run(ctx context.Context) error {
	s.log.InfoContext(ctx, "reminder scheduler started", "interval", s.interval.String(),
		"lease", s.lease.String(), "link_mode", string(s.mode), "send_slots", s.concurrency)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		n, again, err := s.sweep(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "reminder sweep failed", "claims", n, "err", err.Error())
		}
		wait := s.interval + time.Duration((rand.Float64()*0.2-0.1)*float64(s.interval))
		if again > 0 && again < wait {
			wait = again
		}
		timer.Reset(wait)
	}
}

// Sweep claims and handles due reminders until none is due: it claims only as many as it
// has free send slots (Concurrency, at most ClaimLimit per call) and, with a Budget, Persona
// grants left, soonest expiry first, and claims again as slots free up. It returns the
// number of claims handled. The error joins the claim errors (Redis unreachable: nothing
// claimed; some shards failed: the others' claims are still handled), the errors of claims
// that could not be settled (their leases are taken over, with their send intents) and the
// backlog count's error. A ctx that ends stops claiming; claims being handled are finished.
func (s *Scheduler) Sweep(ctx context.Context) (int, error) {
	n, _, err := s.sweep(ctx)
	return n, err
}

// sweep is Sweep; again, when positive, is how soon to sweep again because the sweep
// stopped with the Persona budget used up.
func (s *Scheduler) sweep(ctx context.Context) (handled int, again time.Duration, err error) {
	start := time.Now()
	defer func() { s.metrics.sweepDuration.Observe(time.Since(start).Seconds()) }()

	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	slots := make(chan struct{}, s.concurrency)
	freed := make(chan struct{}, 1)
	lastGauges := time.Now()
	for ctx.Err() == nil {
		inFlight := len(slots)
		// Claim when at least half the slots are free (or none is busy), so that claims come
		// in batches rather than one round trip per finished send.
		if free := s.concurrency - inFlight; free == 0 || (inFlight > 0 && free < (s.concurrency+1)/2) {
			select {
			case <-freed:
			case <-ctx.Done():
			}
			continue
		}
		n := min(s.concurrency-inFlight, s.claimLimit)
		if s.budget != nil {
			left, wait, err := s.budget.Available(ctx)
			if err == nil {
				// The Persona client's limiter goes on unpaced when Redis fails; so do the
				// claims. Otherwise claim no more than the budget can grant in time.
				n = min(n, s.budgetCapacity(left))
			}
			switch {
			case n > 0:
			case inFlight == 0:
				again = wait
			default:
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-freed:
				case <-ctx.Done():
				}
				t.Stop()
				continue
			}
			if again > 0 {
				break
			}
		}
		claimedAt := time.Now()
		claims, err := s.store.ClaimDue(ctx, s.now(), s.lease, n)
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		finished := s.recheckClaims(ctx, claims)
		for _, c := range claims {
			if c.TookOver {
				s.metrics.leaseExpiries.Inc()
				s.log.WarnContext(ctx, "reminder lease expired unsettled; taken over", "inquiry_id", c.InquiryID,
					"intent", c.Intent != "")
			}
			slots <- struct{}{}
			handled++
			wg.Go(func() {
				defer func() {
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				var err error
				if st, ok := finished[c.InquiryID]; ok {
					err = s.dropRechecked(ctx, c, claimedAt, st)
				} else {
					err = s.handle(ctx, c, claimedAt)
				}
				s.observeSend(time.Since(claimedAt))
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		// Nothing left to claim: done. Fewer than asked for may only mean that another
		// replica took some between the two steps of ClaimDue, so claim again.
		if err != nil || len(claims) == 0 {
			break
		}
		if time.Since(lastGauges) >= s.interval {
			lastGauges = time.Now()
			if err := s.updateGauges(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
	}
	wg.Wait()
	if err := s.updateGauges(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return handled, again, fmt.Errorf("sweep reminders: %w", err)
	}
	return handled, again, nil
}

// budgetCapacity is how many claims the shared Persona budget can serve soon: the grants
// left now and half of those that free up within one observed time per claim (at least
// 200 ms, at most the work time of half the lease), the other half being for the other
// replicas. Claiming more would only queue claims at the limiter, where they wait, poll
// Redis and hold their leases.
func (s *Scheduler) budgetCapacity(left int) int {
	horizon := min(max(time.Duration(s.sendTime.Load()), 200*time.Millisecond), s.lease/2)
	refill := s.budget.PerHour() * float64(horizon) / float64(time.Hour) / 2
	return left + int(refill)
}

// observeSend folds the time one claim took, from the claim call to its settle, into the
// moving average sendTime (weight 1/8).
func (s *Scheduler) observeSend(d time.Duration) {
	for {
		old := s.sendTime.Load()
		next := int64(d)
		if old > 0 {
			next = old + (int64(d)-old)/8
		}
		if s.sendTime.CompareAndSwap(old, next) {
			return
		}
	}
}

// updateGauges sets the backlog gauge (due now and unclaimed) and the forecast gauge (due
// within the next hour, the backlog included).
func (s *Scheduler) updateGauges(ctx context.Context) error {
	now := s.now()
	backlog, err := s.store.DueBacklog(ctx, now)
	if err != nil {
		return err
	}
	s.metrics.backlog.Set(float64(backlog))
	hour, err := s.store.DueBacklog(ctx, now.Add(time.Hour))
	if err != nil {
		return err
	}
	s.metrics.dueNextHour.Set(float64(hour))
	return nil
}
