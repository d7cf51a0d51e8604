package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/resumer/resumer/notify"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// BacklogOptions size the backlog scenario.
type BacklogOptions struct {
	// Reminders are due at once when the replicas start.
	Reminders int
	// Replicas are the notify schedulers (each with its own Redis client and Persona client,
	// sharing the limiter), with Slots send slots each.
	Replicas, Slots int
	// PerWindow and Window are the shared Persona budget (the limiter's, and the simulator's
	// fixed window): scaled from Persona's 300 per minute so that the backlog drains in well
	// under a minute.
	PerWindow int
	Window    time.Duration
	// Timeout bounds the drain.
	Timeout time.Duration
}

// backlogChannel is a reminder channel that delivers nothing and records what was handed to
// it, in order, for the deadline-order count.
type backlogChannel struct {
	mu    sync.Mutex
	sends []backlogSend
}

type backlogSend struct {
	id      string
	expires time.Time
}

func (c *backlogChannel) Name() string { return "bench" }

func (c *backlogChannel) Send(_ context.Context, r *notify.Reminder) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends = append(c.sends, backlogSend{r.InquiryID, r.ExpiresAt})
	return false, nil
}

func (c *backlogChannel) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sends)
}

// runBacklog makes Reminders reminders due at once (session-token links, so each costs a
// Persona resume call) and lets Replicas notify schedulers drain them through the shared
// Persona budget. It measures the reminders sent per minute against the budget (the
// baseline: what the limiter grants; at least 95 % is the target), lease expiries (target 0)
// and sends that went out while a reminder expiring more than a sweep interval earlier still
// waited (deadline-order violations, target 0).
func (e *env) runBacklog(ctx context.Context, o BacklogOptions) (*Table, error) {
	t := newTable("backlog", "reminders due at once, drained by notify replicas through the shared Persona budget",
		"reminders", "replicas × slots", "budget", "drain", "sent", "rate", "of budget", "lease expiries", "order violations", "429s")
	if o.Reminders <= 0 || o.Replicas <= 0 || o.Slots <= 0 || o.PerWindow <= 0 || o.Window <= 0 {
		return t, fmt.Errorf("backlog: reminders, replicas, slots, budget and window must be positive")
	}
	const interval = 15 * time.Second
	// The simulator's clock starts behind the real one and catches up 100 ms per inquiry
	// created, so their expiries are spread; then it runs with the real clock (its rate
	// window too).
	var mu sync.Mutex
	lag := time.Duration(o.Reminders) * 100 * time.Millisecond
	simNow := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(-lag)
	}
	sim := personatest.New(personatest.Options{Now: simNow, AfterCreate: 50 * time.Minute,
		RateLimit: o.PerWindow, RateWindow: o.Window})
	simURL, stopSim, err := serveSim(ctx, sim)
	if err != nil {
		return t, err
	}
	defer stopSim()
	for i := range o.Reminders {
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "bench-" + strconv.Itoa(i)})
		if err := sim.Start(inq.ID); err != nil {
			return t, err
		}
		mu.Lock()
		lag -= 100 * time.Millisecond
		mu.Unlock()
	}

	prefix := e.redisPrefix("backlog")
	defer e.cleanPrefix(prefix)
	store, err := state.New(e.rdb, state.Config{Prefix: prefix})
	if err != nil {
		return t, err
	}
	all := sim.Events()
	for len(all) > 0 {
		n := min(len(all), 512)
		batch := make([]*persona.Event, n)
		for i, se := range all[:n] {
			if batch[i], err = persona.ParseEvent(se.Body); err != nil {
				return t, err
			}
		}
		results, err := store.ApplyBatch(ctx, batch)
		if err != nil {
			return t, err
		}
		for _, r := range results {
			if r.Err != nil {
				return t, r.Err
			}
		}
		all = all[n:]
	}

	ch := &backlogChannel{}
	regs := make([]*prometheus.Registry, o.Replicas)
	runCtx, stop := context.WithTimeout(ctx, o.Timeout)
	defer stop()
	var wg sync.WaitGroup
	for i := range regs {
		lim, err := state.NewRateLimiter(e.rdb, state.RateLimiterOptions{Prefix: prefix, Limit: o.PerWindow, Window: o.Window, MinInterval: -1})
		if err != nil {
			return t, err
		}
		client, err := persona.NewClient(persona.ClientOptions{
			BaseURL: simURL, APIKey: sim.APIKey(),
			HTTPClient: &http.Client{Timeout: 10 * time.Second}, Limiter: lim, Registerer: prometheus.NewRegistry(),
		})
		if err != nil {
			return t, err
		}
		regs[i] = prometheus.NewRegistry()
		s, err := notify.NewScheduler(notify.SchedulerOptions{
			Store: store, Persona: client, Budget: lim, Channels: []notify.Channel{ch},
			Concurrency: o.Slots, Interval: interval, Registerer: regs[i],
		})
		if err != nil {
			return t, err
		}
		wg.Go(func() { s.Run(runCtx) })
	}
	e.log("backlog: %d due reminders, %d replicas × %d slots, budget %d per %s", o.Reminders, o.Replicas, o.Slots, o.PerWindow, o.Window)
	start := time.Now()
	for ch.count() < o.Reminders && runCtx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	drain := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()

	sends := slices.Clone(ch.sends)
	var expiries float64
	for _, reg := range regs {
		expiries += gatherSum(reg, "resumer_reminder_lease_expiries_total")
	}
	violations := 0
	if len(sends) > 0 {
		minLater := sends[len(sends)-1].expires
		for i := len(sends) - 1; i >= 0; i-- {
			if sends[i].expires.Sub(minLater) > interval {
				violations++
			}
			if sends[i].expires.Before(minLater) {
				minLater = sends[i].expires
			}
		}
	}
	// Budget use while backlogged: a sliding window lets through PerWindow in any window-long
	// span, so the calls in the whole windows after the first (which holds the replicas'
	// start) and before the last (which holds the end of the backlog), against PerWindow each.
	var calls []time.Time
	tooMany := 0
	for _, r := range sim.RequestLog() {
		if !strings.HasSuffix(r.Path, "/resume") {
			continue
		}
		if r.Status == http.StatusTooManyRequests {
			tooMany++
			continue
		}
		if r.Status == http.StatusOK {
			calls = append(calls, r.At)
		}
	}
	slices.SortFunc(calls, func(a, b time.Time) int { return a.Compare(b) })
	share, perMinute := 0.0, 0.0
	if len(calls) > 0 {
		full := int(calls[len(calls)-1].Sub(calls[0]) / o.Window)
		if full >= 2 {
			from, to := calls[0].Add(o.Window), calls[0].Add(time.Duration(full)*o.Window)
			in := 0
			for _, c := range calls {
				if !c.Before(from) && c.Before(to) {
					in++
				}
			}
			share = float64(in) / float64((full-1)*o.PerWindow)
			perMinute = float64(in) / (float64(full-1) * o.Window.Minutes())
		}
	}
	budgetPerMinute := float64(o.PerWindow) / o.Window.Minutes()
	t.row(itoa(o.Reminders), fmt.Sprintf("%d × %d", o.Replicas, o.Slots), fmt.Sprintf("%d per %s", o.PerWindow, o.Window),
		drain.Round(100*time.Millisecond).String(), itoa(len(sends)), strconv.FormatFloat(perMinute, 'f', 0, 64)+"/min",
		strconv.FormatFloat(100*share, 'f', 1, 64)+" %", strconv.FormatFloat(expiries, 'f', 0, 64), itoa(violations), itoa(tooMany))
	t.Metrics["reminders_per_minute"] = perMinute
	t.Metrics["budget_per_minute"] = budgetPerMinute
	t.Metrics["share_of_budget"] = share
	t.Metrics["lease_expiries"] = expiries
	t.Metrics["order_violations"] = float64(violations)
	t.Metrics["status_429"] = float64(tooMany)
	t.target("reminders sent vs Persona budget", "≥ 0.95 ×", share, share >= 0.95,
		fmt.Sprintf("%.0f/min of %.0f/min", perMinute, budgetPerMinute))
	t.target("lease expiries", "0", expiries, expiries == 0, strconv.FormatFloat(expiries, 'f', 0, 64))
	t.target("deadline-order violations", "0", float64(violations), violations == 0, itoa(violations))
	t.note("rate: resume calls Persona answered in the whole %s windows from the first call, the first and the last window left out (the replicas' start, the backlog's end); the baseline is the budget itself, %d per window", o.Window, o.PerWindow)
	t.note("order violation: a send while a reminder expiring more than one sweep interval (%s) earlier had not gone out; expiries are 100 ms apart", interval)
	if len(sends) < o.Reminders {
		return t, fmt.Errorf("backlog: %d of %d reminders sent within %s", len(sends), o.Reminders, o.Timeout)
	}
	return t, nil
}

// gatherSum returns the sum of the samples of the counter or gauge name in reg.
func gatherSum(reg *prometheus.Registry, name string) float64 {
	families, err := reg.Gather()
	if err != nil {
		return math.NaN()
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += metricValue(m)
		}
	}
	return sum
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}
