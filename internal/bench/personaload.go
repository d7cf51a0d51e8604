package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// PersonaOptions size the persona scenario.
type PersonaOptions struct {
	// Clients are the persona.Clients (think: replicas) sharing one Redis limiter, each
	// with Concurrency callers.
	Clients, Concurrency int
	// PerMinute is the configured rate, both the simulator's limit and the limiter's
	// (scaled to Window).
	PerMinute int
	// Window is the simulator's fixed window and the limiter's sliding one, with the limit
	// scaled to keep PerMinute: a minute is Persona's own window; the full run uses 30 s
	// (150 per 30 s), which keeps the rate, doubles the window boundaries a run crosses and
	// halves its length.
	Window time.Duration
	// Windows is the number of windows measured.
	Windows int
}

// runPersona drives resume calls through Clients persona.Clients that share a Redis rate
// limiter against the Persona simulator, and counts the 429s and the calls per window.
func (e *env) runPersona(ctx context.Context, o PersonaOptions) (*Table, error) {
	t := newTable("persona", "resume calls through clients sharing the Redis limiter, against the simulator's limit",
		"clients", "callers", "limit", "window", "measured", "calls", "rate", "of limit", "429s", "errors")
	perWindow := int(float64(o.PerMinute) * o.Window.Seconds() / 60)
	if perWindow < 1 {
		return t, fmt.Errorf("persona: %d per minute gives no call in a %s window", o.PerMinute, o.Window)
	}
	sim := personatest.New(personatest.Options{RateLimit: perWindow, RateWindow: o.Window})
	simURL, stopSim, err := serveSim(ctx, sim)
	if err != nil {
		return t, err
	}
	defer stopSim()
	ids := make([]string, 0, 64)
	for i := range cap(ids) {
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "bench-" + strconv.Itoa(i)})
		ids = append(ids, inq.ID)
	}

	prefix := e.redisPrefix("persona")
	defer e.cleanPrefix(prefix)
	clients := make([]*persona.Client, o.Clients)
	for i := range clients {
		// One limiter value per client, as each replica builds its own; they share the keys.
		lim, err := state.NewRateLimiter(e.rdb, state.RateLimiterOptions{Prefix: prefix, Limit: perWindow, Window: o.Window})
		if err != nil {
			return t, err
		}
		clients[i], err = persona.NewClient(persona.ClientOptions{
			BaseURL:    simURL,
			APIKey:     sim.APIKey(),
			HTTPClient: &http.Client{Timeout: 10 * time.Second},
			Limiter:    lim,
			Registerer: prometheus.NewRegistry(),
		})
		if err != nil {
			return t, err
		}
	}

	measure := time.Duration(o.Windows) * o.Window
	e.log("persona: %d clients × %d callers for %s at %d per %s", o.Clients, o.Concurrency, measure, perWindow, o.Window)
	var calls, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	runCtx, stop := context.WithTimeout(ctx, measure+o.Window/10+2*time.Second)
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	var k atomic.Int64
	for _, c := range clients {
		for range o.Concurrency {
			wg.Go(func() {
				for runCtx.Err() == nil && time.Since(start) < measure+o.Window/10 {
					id := ids[int(k.Add(1))%len(ids)]
					if _, err := c.Resume(runCtx, id); err != nil {
						if runCtx.Err() != nil {
							return
						}
						failed.Add(1)
						errOnce.Do(func() { firstErr = err })
						continue
					}
					calls.Add(1)
				}
			})
		}
	}
	wg.Wait()
	stop()

	// Count at the simulator: answered calls that arrived in whole windows from the first.
	log := sim.RequestLog()
	var first time.Time
	var inWindow, tooMany, total int
	for _, r := range log {
		if r.Status == 499 {
			continue // cancelled by the end of the run, never answered
		}
		total++
		if r.Status == http.StatusTooManyRequests {
			tooMany++
		}
		if first.IsZero() || r.At.Before(first) {
			first = r.At
		}
	}
	for _, r := range log {
		if r.Status == http.StatusOK && !r.At.Before(first) && r.At.Before(first.Add(measure)) {
			inWindow++
		}
	}
	perMinute := float64(inWindow) / measure.Minutes()
	share := perMinute / float64(o.PerMinute)
	t.row(itoa(o.Clients), itoa(o.Clients*o.Concurrency), itoa(perWindow), o.Window.String(), measure.String(),
		itoa(inWindow), strconv.FormatFloat(perMinute, 'f', 1, 64)+"/min", strconv.FormatFloat(100*share, 'f', 1, 64)+" %",
		itoa(tooMany), strconv.FormatInt(failed.Load(), 10))
	t.Metrics["calls_per_minute"] = perMinute
	t.Metrics["share_of_limit"] = share
	t.Metrics["status_429"] = float64(tooMany)
	t.Metrics["errors"] = float64(failed.Load())
	t.Metrics["requests_total"] = float64(total)
	t.target("429s", "none", float64(tooMany), tooMany == 0, itoa(tooMany)+" of "+itoa(total)+" requests")
	t.target("achieved rate", "within 5 % of "+itoa(o.PerMinute)+"/min", share, share >= 0.95 && share <= 1.05,
		fmt.Sprintf("%.1f/min (%.1f %%)", perMinute, 100*share))
	t.note("rate: 200 answers the simulator received in the %s from its first request; the limiter (sliding window, shared in Redis) and the simulator (fixed window) are both set to %d per %s",
		measure, perWindow, o.Window)
	if o.Window != time.Minute {
		t.note("window scaled from Persona's minute to %s at the same %d per minute (--persona-window 1m for Persona's own window)", o.Window, o.PerMinute)
	}
	if firstErr != nil {
		t.note("first client error: %v", firstErr)
	}
	return t, nil
}

// serveSim serves the Persona simulator sim on a loopback port until the returned stop is
// called (which waits for it), and returns its base URL.
func serveSim(ctx context.Context, sim *personatest.Server) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		sim.Serve(sctx, ln)
	}()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		<-done
	}, nil
}
