package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

const (
	email = "jane@example.com"
	name  = "Jane"
)

// base is the snapshot every scenario starts from; with returns a changed copy.
func base(status persona.Status, template string) *snap {
	return &snap{Status: status, ReferenceID: "user-1", TemplateID: template, AccountID: "act_1",
		CreatedAt: t0, EmailAddress: email, NameFirst: name}
}

func with(s *snap, edit func(*snap)) *snap {
	c := *s
	edit(&c)
	return &c
}

// scenario is a set of events about one inquiry and the record any order of them must end in.
type scenario struct {
	name   string
	events []*persona.Event
	want   Inquiry // ID and UpdatedAt are filled in by the test
	// inExpiry says the inquiry must be in the expiry index (scored by want.ExpiresAt);
	// otherwise it must be in the retention index.
	inExpiry bool
}

func scenarios() []scenario {
	const inq = "inq_x"
	day := 24 * time.Hour
	started := t0.Add(time.Minute)
	pending := func(x time.Time) *snap {
		return with(base(persona.StatusPending, "itmpl_std"), func(s *snap) { s.StartedAt, s.ExpiresAt = started, x })
	}
	return []scenario{{
		// PERSONA.md §4: created -> pending -> completed, with a session and a step change.
		name: "completed lifecycle",
		events: []*persona.Event{
			ev("evt_a1", "inquiry.created", inq, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = t0.Add(day) })),
			ev("evt_a2", "inquiry.started", inq, started, pending(t0.Add(day))),
			ev("evt_a3", "inquiry-session.started", inq, started.Add(time.Second), nil),
			ev("evt_a4", "inquiry.transitioned", inq, t0.Add(3*time.Minute), pending(t0.Add(day))),
			ev("evt_a5", "inquiry.completed", inq, t0.Add(5*time.Minute), with(pending(t0.Add(day)), func(s *snap) {
				s.Status, s.CompletedAt = persona.StatusCompleted, t0.Add(5*time.Minute)
			})),
		},
		want: Inquiry{Status: persona.StatusCompleted, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, CompletedAt: t0.Add(5 * time.Minute), ExpiresAt: t0.Add(day),
			StatusAt: t0.Add(5 * time.Minute), LastEventID: "evt_a5", LastEventName: "inquiry.completed"},
	}, {
		// PERSONA.md §5: no expires-at: pending expires started-at + the template's interval.
		name: "pending, expiry derived from template interval",
		events: []*persona.Event{
			ev("evt_b1", "inquiry.created", inq, t0, base(persona.StatusCreated, "itmpl_short")),
			ev("evt_b2", "inquiry.started", inq, t0.Add(10*time.Minute), with(base(persona.StatusPending, "itmpl_short"), func(s *snap) { s.StartedAt = t0.Add(10 * time.Minute) })),
			ev("evt_b3", "inquiry-session.started", inq, t0.Add(11*time.Minute), nil),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_short", AccountID: "act_1",
			CreatedAt: t0, StartedAt: t0.Add(10 * time.Minute), ExpiresAt: t0.Add(10*time.Minute + 2*time.Hour), ExpiresAtDerived: true,
			StatusAt: t0.Add(10 * time.Minute), LastEventID: "evt_b3", LastEventName: "inquiry-session.started",
			EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		name: "created, expiry derived from default interval",
		events: []*persona.Event{
			ev("evt_c1", "inquiry.created", inq, t0, base(persona.StatusCreated, "itmpl_other")),
			ev("evt_c2", "inquiry-session.expired", inq, t0.Add(30*time.Minute), nil),
		},
		want: Inquiry{Status: persona.StatusCreated, ReferenceID: "user-1", TemplateID: "itmpl_other", AccountID: "act_1",
			CreatedAt: t0, ExpiresAt: t0.Add(day), ExpiresAtDerived: true, StatusAt: t0,
			LastEventID: "evt_c2", LastEventName: "inquiry-session.expired", EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		name: "expiry extended",
		events: []*persona.Event{
			ev("evt_d1", "inquiry.started", inq, started, pending(t0.Add(day))),
			ev("evt_d2", "inquiry.transitioned", inq, t0.Add(time.Hour), pending(t0.Add(2*day))),
			ev("evt_d3", "inquiry.transitioned", inq, t0.Add(2*time.Hour), pending(t0.Add(2*day))),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiresAt: t0.Add(2 * day), StatusAt: t0.Add(2 * time.Hour),
			LastEventID: "evt_d3", LastEventName: "inquiry.transitioned", EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		// PERSONA.md §4: the list grows; an unknown status is stored as it is.
		name: "unknown status",
		events: []*persona.Event{
			ev("evt_e1", "inquiry.created", inq, t0, base(persona.StatusCreated, "itmpl_std")),
			ev("evt_e2", "inquiry.paused", inq, t0.Add(time.Minute), base("paused", "itmpl_std")),
		},
		want: Inquiry{Status: "paused", ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, ExpiresAt: t0.Add(day), ExpiresAtDerived: true, StatusAt: t0.Add(time.Minute),
			LastEventID: "evt_e2", LastEventName: "inquiry.paused"},
	}, {
		// PERSONA.md §6: an expired inquiry resumed becomes pending with a new expiry.
		name: "expired then resumed",
		events: []*persona.Event{
			ev("evt_f1", "inquiry.started", inq, started, pending(t0.Add(day))),
			ev("evt_f2", "inquiry.expired", inq, t0.Add(day), with(pending(t0.Add(day)), func(s *snap) {
				s.Status, s.ExpiredAt, s.EmailAddress, s.NameFirst = persona.StatusExpired, t0.Add(day), "", ""
			})),
			ev("evt_f3", "inquiry.started", inq, t0.Add(25*time.Hour), with(pending(t0.Add(49*time.Hour)), func(s *snap) { s.NameFirst = "Janet" })),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiredAt: t0.Add(day), ExpiresAt: t0.Add(49 * time.Hour), StatusAt: t0.Add(25 * time.Hour),
			LastEventID: "evt_f3", LastEventName: "inquiry.started", EmailAddress: email, NameFirst: "Janet"},
		inExpiry: true,
	}, {
		name: "tie: approved wins over completed at the same time",
		events: []*persona.Event{
			ev("evt_g1", "inquiry.started", inq, started, pending(t0.Add(day))),
			ev("evt_g2", "inquiry.completed", inq, t0.Add(5*time.Minute), with(pending(t0.Add(day)), func(s *snap) { s.Status = persona.StatusCompleted })),
			ev("evt_g3", "inquiry.approved", inq, t0.Add(5*time.Minute), with(pending(t0.Add(day)), func(s *snap) { s.Status = persona.StatusApproved })),
		},
		want: Inquiry{Status: persona.StatusApproved, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiresAt: t0.Add(day), StatusAt: t0.Add(5 * time.Minute),
			LastEventID: "evt_g3", LastEventName: "inquiry.approved"},
	}, {
		name: "tie: expired wins over created at the same time",
		events: []*persona.Event{
			ev("evt_h1", "inquiry.created", inq, t0, base(persona.StatusCreated, "itmpl_std")),
			ev("evt_h2", "inquiry.expired", inq, t0, base(persona.StatusExpired, "itmpl_std")),
		},
		want: Inquiry{Status: persona.StatusExpired, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, ExpiresAt: t0.Add(day), ExpiresAtDerived: true, StatusAt: t0,
			LastEventID: "evt_h2", LastEventName: "inquiry.expired"},
	}, {
		// A session event first is ignored (no record without a status); an unknown event
		// name whose payload says pending creates the record.
		name: "session first, unknown event with status",
		events: []*persona.Event{
			ev("evt_i1", "inquiry-session.started", inq, t0.Add(time.Minute), nil),
			ev("evt_i2", "inquiry.frobnicated", inq, t0.Add(2*time.Minute), with(base(persona.StatusPending, "itmpl_short"), func(s *snap) { s.StartedAt = started })),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_short", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiresAt: started.Add(2 * time.Hour), ExpiresAtDerived: true, StatusAt: t0.Add(2 * time.Minute),
			LastEventID: "evt_i2", LastEventName: "inquiry.frobnicated", EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		// PERSONA.md §5: intervals are per template and independent: after-create 7 days,
		// after-start 24 hours, so inquiry.started brings an earlier expires-at, and it wins
		// because its event is newer.
		name: "start shortens the expiry",
		events: []*persona.Event{
			ev("evt_j1", "inquiry.created", inq, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = t0.Add(7 * day) })),
			ev("evt_j2", "inquiry.started", inq, started, pending(started.Add(day))),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiresAt: started.Add(day), StatusAt: started,
			LastEventID: "evt_j2", LastEventName: "inquiry.started", EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		// PERSONA.md §5, §6: created (+7 d), started (+24 h), expired, resumed (+24 h from the
		// resume): the resume's expires-at, whatever the order.
		name: "shortened, expired, resumed",
		events: []*persona.Event{
			ev("evt_k1", "inquiry.created", inq, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = t0.Add(7 * day) })),
			ev("evt_k2", "inquiry.started", inq, started, pending(started.Add(day))),
			ev("evt_k3", "inquiry.expired", inq, started.Add(day), with(pending(started.Add(day)), func(s *snap) {
				s.Status, s.ExpiredAt, s.EmailAddress, s.NameFirst = persona.StatusExpired, started.Add(day), "", ""
			})),
			ev("evt_k4", "inquiry.started", inq, started.Add(30*time.Hour), with(pending(started.Add(54*time.Hour)), func(s *snap) { s.ExpiredAt = started.Add(day) })),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiredAt: started.Add(day), ExpiresAt: started.Add(54 * time.Hour),
			StatusAt: started.Add(30 * time.Hour), LastEventID: "evt_k4", LastEventName: "inquiry.started",
			EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		// The same without the inquiry.expired event (lost, or not subscribed to).
		name: "shortened, resumed after expiry",
		events: []*persona.Event{
			ev("evt_l1", "inquiry.created", inq, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = t0.Add(7 * day) })),
			ev("evt_l2", "inquiry.started", inq, started, pending(started.Add(day))),
			ev("evt_l3", "inquiry.started", inq, started.Add(30*time.Hour), with(pending(started.Add(54*time.Hour)), func(s *snap) { s.ExpiredAt = started.Add(day) })),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiredAt: started.Add(day), ExpiresAt: started.Add(54 * time.Hour),
			StatusAt: started.Add(30 * time.Hour), LastEventID: "evt_l3", LastEventName: "inquiry.started",
			EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		// PERSONA.md §5: an older webhook version sends no expires-at; the derived default
		// gives way to any carried value, even an older event's.
		name: "carried expiry replaces a derived one",
		events: []*persona.Event{
			ev("evt_m1", "inquiry.created", inq, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = t0.Add(7 * day) })),
			ev("evt_m2", "inquiry.started", inq, started, pending(time.Time{})),
			ev("evt_m3", "inquiry-session.started", inq, started.Add(time.Second), nil),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiresAt: t0.Add(7 * day), StatusAt: started,
			LastEventID: "evt_m3", LastEventName: "inquiry-session.started", EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}, {
		// Two events at the same time with different expires-at: the later value, in any order.
		name: "tie: same event time, the later expiry wins",
		events: []*persona.Event{
			ev("evt_n1", "inquiry.transitioned", inq, started, pending(started.Add(day))),
			ev("evt_n2", "inquiry.transitioned", inq, started, pending(started.Add(2*day))),
			ev("evt_n3", "inquiry.transitioned", inq, started, pending(started.Add(time.Hour))),
		},
		want: Inquiry{Status: persona.StatusPending, ReferenceID: "user-1", TemplateID: "itmpl_std", AccountID: "act_1",
			CreatedAt: t0, StartedAt: started, ExpiresAt: started.Add(2 * day), StatusAt: started,
			LastEventID: "evt_n3", LastEventName: "inquiry.transitioned", EmailAddress: email, NameFirst: name},
		inExpiry: true,
	}}
}

// orders returns the orders to apply n events in: every permutation for up to 5 events,
// else the given order, reversed and 20 shuffles with fixed seeds; then each of those with
// every event applied twice, and 5 shuffles of the doubled sequence.
func orders(n int) (single, doubled [][]int) {
	id := make([]int, n)
	for i := range id {
		id[i] = i
	}
	if n <= 5 {
		single = permutations(id)
	} else {
		rev := make([]int, n)
		for i := range rev {
			rev[i] = n - 1 - i
		}
		single = [][]int{id, rev}
		for seed := range 20 {
			p := append([]int(nil), id...)
			rand.New(rand.NewPCG(uint64(seed), 1)).Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
			single = append(single, p)
		}
	}
	for _, o := range [][]int{id, single[len(single)-1]} {
		var d []int
		for _, i := range o {
			d = append(d, i, i)
		}
		doubled = append(doubled, d)
	}
	twice := append(append([]int(nil), id...), id...)
	for seed := range 5 {
		p := append([]int(nil), twice...)
		rand.New(rand.NewPCG(uint64(seed), 2)).Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		doubled = append(doubled, p)
	}
	return single, doubled
}

func permutations(s []int) [][]int {
	if len(s) <= 1 {
		return [][]int{append([]int(nil), s...)}
	}
	var out [][]int
	for i := range s {
		rest := append(append([]int(nil), s[:i]...), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]int{s[i]}, p...))
		}
	}
	return out
}

// TestApplyOrderIndependent applies each scenario's events in every order (and duplicated)
// to a fresh inquiry per order and checks that all end in the scenario's record, index
// membership and counters (DESIGN.md decision 2; PERSONA.md §2: order is not guaranteed,
// duplicates happen).
func TestApplyOrderIndependent(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			f := newFixture(t)
			single, doubled := orders(len(sc.events))
			all := append(single, doubled...)
			var source string // the record's expiry source (field xd), the same for every order
			for n, order := range all {
				id := fmt.Sprintf("inq_%d", n)
				events := forInquiry(sc.events, id)
				// An event without an inquiry snapshot (a session's) before the record exists is
				// ignored and forgotten (PERSONA.md §4: it tells no status); the last event is the
				// newest of the others (by time, then stored id).
				seen := map[int]bool{}
				var last *persona.Event
				for _, i := range order {
					e := events[i]
					o := f.apply(t, e)
					if len(seen) == 0 && e.Inquiry == nil {
						if o != OutcomeIgnored {
							t.Errorf("order %v: event %s without a record: outcome %q, want ignored", order, e.ID, o)
						}
						continue
					}
					if seen[i] && o != OutcomeDuplicate {
						t.Errorf("order %v: event %s again: outcome %q, want duplicate", order, e.ID, o)
					}
					seen[i] = true
					if last == nil || e.CreatedAt.After(last.CreatedAt) || (e.CreatedAt.Equal(last.CreatedAt) && packID(last.ID) < packID(e.ID)) {
						last = e
					}
				}
				got := f.inquiry(t, id)
				if src := f.rawRecord(t, id)[fieldExpirySource]; n == 0 {
					source = src
				} else if src != source {
					t.Errorf("order %v: expiry source %q, first order %q", order, src, source)
				}
				want := sc.want
				if len(seen) == len(events) && (last.ID != want.LastEventID || last.Name != want.LastEventName) {
					t.Fatalf("scenario's last event %s, test's %s", want.LastEventID, last.ID)
				}
				want.ID, want.UpdatedAt, want.LastEventID, want.LastEventName = id, f.clock.Now(), last.ID, last.Name
				if !reflect.DeepEqual(*got, want) {
					t.Fatalf("order %v:\n got %+v\nwant %+v", order, *got, want)
				}
				score, indexed := f.inExpiry(t, id)
				if indexed != sc.inExpiry || (indexed && int64(score) != want.ExpiresAt.UnixMilli()) {
					t.Errorf("order %v: expiry index: member %v score %v, want member %v score %v",
						order, indexed, int64(score), sc.inExpiry, want.ExpiresAt.UnixMilli())
				}
				if _, retained := f.inRetention(t, id); retained == sc.inExpiry {
					t.Errorf("order %v: retention index member %v, want %v", order, retained, !sc.inExpiry)
				}
			}
			want := map[persona.Status]int64{sc.want.Status: int64(len(all))}
			if got := f.counts(t); !reflect.DeepEqual(got, want) {
				t.Errorf("CountByStatus = %v, want %v", got, want)
			}
			wantExp := int64(0)
			if sc.inExpiry && !sc.want.ExpiresAt.After(f.clock.Now().Add(72*time.Hour)) {
				wantExp = int64(len(all))
			}
			if got, err := f.store.CountExpiring(context.Background(), 72*time.Hour); err != nil || got != wantExp {
				t.Errorf("CountExpiring = %d, %v; want %d", got, err, wantExp)
			}
		})
	}
}

// TestApplyOutcomes checks the outcome of each event for given orders.
func TestApplyOutcomes(t *testing.T) {
	lifecycle := scenarios()[0].events
	tests := []struct {
		name  string
		order []int
		want  []Outcome
	}{
		{"in order", []int{0, 1, 2, 3, 4},
			[]Outcome{OutcomeApplied, OutcomeApplied, OutcomeIgnored, OutcomeIgnored, OutcomeApplied}},
		{"reversed", []int{4, 3, 2, 1, 0},
			[]Outcome{OutcomeApplied, OutcomeIgnored, OutcomeIgnored, OutcomeStale, OutcomeStale}},
		{"duplicates", []int{0, 0, 1, 0, 1},
			[]Outcome{OutcomeApplied, OutcomeDuplicate, OutcomeApplied, OutcomeDuplicate, OutcomeDuplicate}},
		// PERSONA.md §4: a session event tells no status; it does not create a record.
		{"session event first", []int{2, 0, 2},
			[]Outcome{OutcomeIgnored, OutcomeApplied, OutcomeIgnored}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			events := forInquiry(lifecycle, "inq_o")
			for i, e := range tt.order {
				if got := f.apply(t, events[e]); got != tt.want[i] {
					t.Errorf("event %d (%s): outcome %q, want %q", i, events[e].Name, got, tt.want[i])
				}
			}
		})
	}
}

// TestApplyPartEvents: events about an inquiry's parts (PERSONA.md §4: verification.*,
// document.*, inquiry-session.*, with an inquiry relationship) never create a record; on an
// existing record they move the last activity and change nothing else.
func TestApplyPartEvents(t *testing.T) {
	f := newFixture(t)
	const id = "inq_parts"
	part := func(evID, name string, at time.Time) *persona.Event {
		e := ev(evID, name, id, at, nil)
		e.PayloadType = strings.SplitN(name, ".", 2)[0]
		return e
	}
	if got := f.apply(t, part("evt_v1", "verification.passed", t0.Add(time.Minute))); got != OutcomeIgnored {
		t.Errorf("verification before the inquiry: outcome %q, want ignored", got)
	}
	if _, err := f.store.Inquiry(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record after a verification event: %v, want ErrNotFound", err)
	}
	f.apply(t, ev("evt_c", "inquiry.created", id, t0, base(persona.StatusCreated, "itmpl_std")))
	before := f.inquiry(t, id)
	if got := f.apply(t, part("evt_d1", "document.submitted", t0.Add(2*time.Minute))); got != OutcomeIgnored {
		t.Errorf("document event: outcome %q, want ignored", got)
	}
	if got := f.apply(t, part("evt_v0", "verification.created", t0.Add(time.Second))); got != OutcomeIgnored {
		t.Errorf("older verification event: outcome %q, want ignored", got)
	}
	after := f.inquiry(t, id)
	if after.LastEventID != "evt_d1" || after.LastEventName != "document.submitted" {
		t.Errorf("last event %s %s, want the document event", after.LastEventID, after.LastEventName)
	}
	after.LastEventID, after.LastEventName = before.LastEventID, before.LastEventName
	if !reflect.DeepEqual(after, before) {
		t.Errorf("part events changed the record:\n got %+v\nwant %+v", after, before)
	}
	if got := f.counts(t); !reflect.DeepEqual(got, map[persona.Status]int64{persona.StatusCreated: 1}) {
		t.Errorf("CountByStatus = %v", got)
	}
}

// TestApplyStaleFillsEmptyFields: an older event never changes the status but fills fields
// the newer ones lacked (DESIGN.md decision 2).
func TestApplyStaleFillsEmptyFields(t *testing.T) {
	f := newFixture(t)
	completed := ev("evt_1", "inquiry.completed", "inq_s", t0.Add(time.Hour), &snap{Status: persona.StatusCompleted, CompletedAt: t0.Add(time.Hour)})
	created := ev("evt_2", "inquiry.created", "inq_s", t0, base(persona.StatusCreated, "itmpl_std"))
	f.apply(t, completed)
	if got := f.apply(t, created); got != OutcomeStale {
		t.Fatalf("older created: outcome %q, want stale", got)
	}
	got := f.inquiry(t, "inq_s")
	if got.Status != persona.StatusCompleted || got.ReferenceID != "user-1" || got.TemplateID != "itmpl_std" || !got.CreatedAt.Equal(t0) {
		t.Errorf("record %+v: want completed with reference, template and created-at filled", got)
	}
	if got.EmailAddress != "" || got.NameFirst != "" {
		t.Errorf("completed record keeps e-mail %q / name %q", got.EmailAddress, got.NameFirst)
	}
	if got.LastEventID != "evt_1" {
		t.Errorf("LastEventID = %s, want the newest event evt_1", got.LastEventID)
	}
}

// TestApplyEventMemory: an id is a duplicate within EventMemory and forgotten after it; a
// record remembers at most rememberedEvents ids.
func TestApplyEventMemory(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.EventMemory = time.Hour })
	started := ev("evt_1", "inquiry.started", "inq_m", t0, base(persona.StatusPending, "itmpl_std"))
	f.apply(t, started)
	f.clock.Add(59 * time.Minute)
	if got := f.apply(t, started); got != OutcomeDuplicate {
		t.Errorf("after 59m: outcome %q, want duplicate", got)
	}
	f.clock.Add(2 * time.Minute)
	if got := f.apply(t, started); got != OutcomeIgnored {
		t.Errorf("after 61m: outcome %q, want ignored (forgotten, and changes nothing)", got)
	}
	for i := range rememberedEvents {
		f.apply(t, ev(fmt.Sprintf("evt_s%d", i), "inquiry-session.started", "inq_m", t0, nil))
	}
	if got := f.apply(t, started); got == OutcomeDuplicate {
		t.Errorf("after %d newer ids: still remembered", rememberedEvents)
	}
	if got := f.apply(t, ev("evt_s5", "inquiry-session.started", "inq_m", t0, nil)); got != OutcomeDuplicate {
		t.Errorf("recent id: outcome %q, want duplicate", got)
	}
}

// TestApplyBatchInvalidEvents: invalid events get their own error, the rest apply.
func TestApplyBatchInvalidEvents(t *testing.T) {
	f := newFixture(t)
	good := ev("evt_1", "inquiry.created", "inq_v", t0, base(persona.StatusCreated, "itmpl_std"))
	events := []*persona.Event{
		nil,
		{Name: "inquiry.created", InquiryID: "inq_v", CreatedAt: t0},
		{ID: "evt_2", Name: "inquiry.created", CreatedAt: t0},
		{ID: "evt_3", Name: "inquiry.created", InquiryID: "inq_v"},
		good,
	}
	results, err := f.store.ApplyBatch(context.Background(), events)
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	for i, r := range results[:4] {
		if !errors.Is(r.Err, ErrInvalidEvent) || r.Outcome != "" {
			t.Errorf("results[%d] = %+v, want ErrInvalidEvent", i, r)
		}
	}
	if r := results[4]; r.Err != nil || r.Outcome != OutcomeApplied {
		t.Errorf("results[4] = %+v, want applied", r)
	}
	if _, err := f.store.Apply(context.Background(), nil); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("Apply(nil) = %v, want ErrInvalidEvent", err)
	}
}

func TestInquiryNotFound(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.Inquiry(context.Background(), "inq_none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inquiry(unknown) = %v, want ErrNotFound", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFixture(t)
	for _, cfg := range []Config{
		{Prefix: "a{b"},
		{Shards: -1},
		{Retention: -time.Second},
		{ExpiryByTemplate: map[string]time.Duration{"itmpl": 0}},
	} {
		if _, err := New(f.client, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("New(nil client) succeeded")
	}
}
