package report

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/notify"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// simT0 is when the simulated inquiries are created; they expire 24 hours later.
var simT0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// simClock is the injected clock of the simulation.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// population is a simulated set of inquiries with known behaviour: after each reminder (or
// held-out reminder) a user completes with the probability of their group and stage, and the
// truth of every funnel step, as the store should count it.
type population struct {
	ids     []string
	held    map[string]bool
	truth   map[string]int64 // "group/stage/step"
	elapsed map[string]int64 // completions per group
	rng     *rand.Rand
	// pComplete[group][stage] is the chance of completing after that stage's reminder.
	pComplete map[string]map[string]float64
}

// Behaviour of the simulated users: reminded users open the link 60 % of the time and press
// its button 80 % of those; completion chances per stage and group below.
const (
	pOpen  = 0.6
	pPress = 0.8
)

func (p *population) count(group, stage, step string) { p.truth[group+"/"+stage+"/"+step]++ }

func groupOf(held bool) string {
	if held {
		return state.GroupHeldOut
	}
	return state.GroupReminded
}

// sim drives a state.Store the way the worker, notifier and api would, with an injected clock.
type sim struct {
	t      *testing.T
	clock  *simClock
	prefix string
	url    string
	client *redis.Client
	store  *state.Store
	// applied are the events applied so far, for redelivery after a restart.
	applied []*persona.Event
	n       int
}

func newSim(t *testing.T) *sim {
	s := &sim{t: t, clock: &simClock{t: simT0}}
	s.client, s.prefix = testenv.Redis(t)
	s.url = testenv.RedisURL(t)
	s.store = s.newStore(s.client)
	return s
}

func (s *sim) newStore(client *redis.Client) *state.Store {
	st, err := state.New(client, state.Config{Prefix: s.prefix, Shards: 16, Now: s.clock.Now})
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// restart replaces the store and its Redis connection, as a restart of every resumer
// process would, and redelivers every event applied so far (JetStream redelivers what was
// not acknowledged; here, all of it).
func (s *sim) restart() {
	s.t.Helper()
	opts, err := redis.ParseURL(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(opts)
	s.t.Cleanup(func() { c.Close() })
	s.store = s.newStore(c)
	s.apply(slices.Clone(s.applied)...)
}

// event builds an event about inquiry id at time at.
func (s *sim) event(name, id string, at time.Time, status persona.Status) *persona.Event {
	s.n++
	ev := &persona.Event{ID: fmt.Sprintf("evt_sim%020d", s.n), Name: name, CreatedAt: at, InquiryID: id}
	if status != "" {
		ev.Inquiry = &persona.Inquiry{ID: id, Status: status, CreatedAt: simT0, ExpiresAt: simT0.Add(24 * time.Hour),
			EmailAddress: "user@example.com"}
	}
	return ev
}

// apply applies events in batches, as the worker does, and fails on any error.
func (s *sim) apply(events ...*persona.Event) {
	s.t.Helper()
	for len(events) > 0 {
		n := min(len(events), 512)
		res, err := s.store.ApplyBatch(context.Background(), events[:n])
		if err != nil {
			s.t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				s.t.Fatalf("apply %s: %v", events[i].ID, r.Err)
			}
		}
		events = events[n:]
	}
}

// deliver applies events and remembers them for redelivery.
func (s *sim) deliver(events ...*persona.Event) {
	s.t.Helper()
	s.apply(events...)
	s.applied = append(s.applied, events...)
}

// remind claims every due reminder at now and settles it as the notifier would: held-out
// inquiries are recorded held out, the others sent by e-mail. It returns the claims by
// inquiry id. One claim's settle is repeated, to show a retried settle counts nothing twice.
func (s *sim) remind(now time.Time, p *population) map[string]state.Claim {
	s.t.Helper()
	s.clock.Set(now)
	ctx := context.Background()
	out := map[string]state.Claim{}
	for {
		claims, err := s.store.ClaimDue(ctx, now, time.Minute, 1000)
		if err != nil {
			s.t.Fatal(err)
		}
		if len(claims) == 0 {
			return out
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		errs := make(chan error, len(claims))
		for i := range claims {
			c := &claims[i]
			stage := "6h"
			if slices.Contains(c.RemindersSent, "6h") {
				stage = "1h"
			}
			c.Attribution = state.Attribution{Group: groupOf(p.held[c.InquiryID]), Stage: stage, Channel: "email", LinkMode: "redirect"}
			out[c.InquiryID] = *c
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := s.store.CompleteReminder(ctx, *c, stage, nil); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			s.t.Fatal(err)
		}
		// A settle retried after its answer was lost finds the lease gone and counts nothing.
		if err := s.store.CompleteReminder(ctx, claims[0], claims[0].Attribution.Stage, nil); err == nil {
			s.t.Fatal("second CompleteReminder of one claim: no error")
		}
	}
}

// respond plays what the users reminded (or held out) at stage do within the next hour.
// Those who complete resume and complete at random times after the reminder and then get a
// decision; the others stay pending. It returns the ids still pending.
func (s *sim) respond(p *population, stage string, remindedAt time.Time, ids []string) []string {
	s.t.Helper()
	ctx := context.Background()
	var pending []string
	var events []*persona.Event
	for _, id := range ids {
		held := p.held[id]
		g := groupOf(held)
		p.count(g, stage, state.StepReminder)
		if stage == "6h" {
			p.count(g, stage, state.StepInquiry)
		}
		if !held && p.rng.Float64() < pOpen {
			step := state.LinkOpened
			p.count(g, stage, state.StepOpened)
			if p.rng.Float64() < pPress {
				step = state.LinkPressed
				p.count(g, stage, state.StepPressed)
			}
			s.clock.Set(remindedAt.Add(time.Minute))
			if ok, err := s.store.MarkLink(ctx, id, step); err != nil || !ok {
				s.t.Fatalf("MarkLink(%s, %s) = %v, %v", id, step, ok, err)
			}
			// A second view of the same link counts nothing.
			if _, err := s.store.MarkLink(ctx, id, state.LinkOpened); err != nil {
				s.t.Fatal(err)
			}
		}
		if p.rng.Float64() >= p.pComplete[g][stage] {
			pending = append(pending, id)
			continue
		}
		after := time.Duration(2+p.rng.IntN(50)) * time.Minute
		at := remindedAt.Add(after)
		events = append(events,
			s.event("inquiry-session.started", id, at.Add(-time.Minute), ""),
			s.event("inquiry.completed", id, at, persona.StatusCompleted))
		p.count(g, stage, state.StepResumed)
		p.count(g, stage, state.StepCompleted)
		p.elapsed[g]++
		switch r := p.rng.Float64(); {
		case r < 0.6:
			events = append(events, s.event("inquiry.approved", id, at.Add(time.Minute), persona.StatusApproved))
			p.count(g, stage, state.StepApproved)
		case r < 0.8:
			events = append(events, s.event("inquiry.declined", id, at.Add(time.Minute), persona.StatusDeclined))
			p.count(g, stage, state.StepDeclined)
		default:
			events = append(events, s.event("inquiry.marked-for-review", id, at.Add(time.Minute), persona.StatusNeedsReview))
			p.count(g, stage, state.StepNeedsReview)
		}
	}
	s.clock.Set(remindedAt.Add(time.Hour))
	s.deliver(events...)
	return pending
}

// TestSimulatedPopulation simulates 10,000 inquiries, 20 % held out, whose users complete
// after a reminder with known chances (reminded 35 % then 25 %, held out 15 % then 10 %; fixed
// seed). The report's funnel counts equal the simulation's truth exactly, the overall uplift
// interval contains the true difference, and a restart of every process in the middle (new
// store and connections, every event delivered again, a settle retried) changes no count.
// simulate plays a population of n inquiries through two reminder stages (see
// TestSimulatedPopulation), restarting every process in the middle and at the end when
// restart is set. Every event happens on simT0's day or the next.
func simulate(t *testing.T, n int, restart bool) (*sim, *population) {
	s := newSim(t)
	p := &population{
		held: map[string]bool{}, truth: map[string]int64{}, elapsed: map[string]int64{},
		rng: rand.New(rand.NewPCG(16, 2026)),
		pComplete: map[string]map[string]float64{
			state.GroupReminded: {"6h": 0.35, "1h": 0.25},
			state.GroupHeldOut:  {"6h": 0.15, "1h": 0.10},
		},
	}
	holdout := notify.Holdout{Percent: 20, Salt: "simulation"}
	var created []*persona.Event
	for i := range n {
		id := fmt.Sprintf("inq_sim%021d", i)
		p.ids = append(p.ids, id)
		p.held[id] = holdout.HeldOut(id)
		created = append(created,
			s.event("inquiry.created", id, simT0, persona.StatusCreated),
			s.event("inquiry.started", id, simT0.Add(time.Minute), persona.StatusPending))
	}
	s.clock.Set(simT0.Add(time.Minute))
	s.deliver(created...)

	x := simT0.Add(24 * time.Hour)
	at6 := x.Add(-6 * time.Hour)
	claims := s.remind(at6, p)
	if len(claims) != n {
		t.Fatalf("6h stage: %d claims, want %d", len(claims), n)
	}
	pending := s.respond(p, "6h", at6, p.ids)

	// Every process restarts in the middle: new stores, every event so far delivered again.
	if restart {
		s.restart()
	}

	at1 := x.Add(-time.Hour)
	claims = s.remind(at1, p)
	if len(claims) != len(pending) {
		t.Fatalf("1h stage: %d claims, want the %d still pending", len(claims), len(pending))
	}
	pending = s.respond(p, "1h", at1, pending)
	var expired []*persona.Event
	for _, id := range pending {
		expired = append(expired, s.event("inquiry.expired", id, x, persona.StatusExpired))
		p.count(groupOf(p.held[id]), "1h", state.StepExpired)
	}
	s.clock.Set(x.Add(time.Minute))
	s.deliver(expired...)

	// And again at the end: nothing may change.
	if restart {
		s.restart()
	}

	return s, p
}

func TestSimulatedPopulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 10,000 inquiries")
	}
	const n = 10000
	s, p := simulate(t, n, true)
	x := simT0.Add(24 * time.Hour)
	ctx := context.Background()
	data, err := s.store.Funnel(ctx, simT0, x.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var histo map[string]int64 = map[string]int64{}
	for _, c := range data.Counts {
		if c.Attribution.Channel != "email" || c.Attribution.LinkMode != "redirect" {
			t.Errorf("count with attribution %+v", c.Attribution)
		}
		got[c.Attribution.Group+"/"+c.Attribution.Stage+"/"+c.Step] += c.Count
	}
	for _, e := range data.Elapsed {
		for i, b := range e.Buckets {
			histo[e.Attribution.Group] += b
			// Completions came 2 to 51 minutes after their reminder.
			if b > 0 && i > 3 {
				t.Errorf("%d completions in histogram bucket %d", b, i)
			}
		}
	}
	for k, v := range p.truth {
		if got[k] != v {
			t.Errorf("funnel %s = %d, want %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := p.truth[k]; !ok {
			t.Errorf("funnel %s = %d, want none", k, v)
		}
	}
	for g, v := range p.elapsed {
		if histo[g] != v {
			t.Errorf("completion histogram of %s holds %d, want %d", g, histo[g], v)
		}
	}

	r, err := Build(ctx, s.store, Options{From: simT0, To: x}, x)
	if err != nil {
		t.Fatal(err)
	}
	// True overall completion: 1 - (1-a)(1-b) per group.
	p1 := 1 - (1-0.35)*(1-0.25)
	p0 := 1 - (1-0.15)*(1-0.10)
	u := r.Overall.Uplift
	if u == nil || !u.Conclusive || u.Difference.Low > p1-p0 || u.Difference.High < p1-p0 {
		t.Errorf("overall uplift %+v does not contain the true %.4f", u, p1-p0)
	}
	heldN := int64(0)
	for _, h := range p.held {
		if h {
			heldN++
		}
	}
	if r.Overall.HeldOut.Count != heldN || r.Overall.Reminded.Count != n-heldN {
		t.Errorf("overall counts %d reminded, %d held out; want %d, %d", r.Overall.Reminded.Count, r.Overall.HeldOut.Count, n-heldN, heldN)
	}
	for _, row := range r.Rows {
		want := p.pComplete[state.GroupReminded][row.Key] - p.pComplete[state.GroupHeldOut][row.Key]
		if d := row.Uplift.Difference; d.Low > want || d.High < want {
			t.Errorf("stage %s: uplift %+v does not contain the true %.2f", row.Key, d, want)
		}
		if row.Reminded.Count != p.truth["reminded/"+row.Key+"/reminder"] {
			t.Errorf("stage %s: %d reminders, want %d", row.Key, row.Reminded.Count, p.truth["reminded/"+row.Key+"/reminder"])
		}
	}
	if last := r.Elapsed[len(r.Elapsed)-1]; last.Reminded != r.Overall.Reminded.Completion.Value {
		t.Errorf("completion by time since reminder ends at %v, want the overall rate %v", last.Reminded, r.Overall.Reminded.Completion.Value)
	}
	t.Logf("overall: %s", r.Summary)
}
