package personatest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Event is one webhook event the simulator emitted.
type Event struct {
	ID        string
	Name      string
	InquiryID string
	CreatedAt time.Time
	// Body is the exact JSON delivered (PERSONA.md §3).
	Body []byte
	// Delivered is false when webhook delivery was switched off (SetWebhooks) as the event
	// was emitted: it reached no receiver and only the Events API knows it.
	Delivered bool
	// doc is the event object ("data" of the body) with kebab-case keys, as the Events API
	// lists it.
	doc map[string]any
}

// Delivery is one delivery attempt of an event to one URL.
type Delivery struct {
	EventID   string
	EventName string
	URL       string
	// Attempt counts from 1 per (event, URL); a WebhookDuplicates copy counts anew.
	Attempt int
	// Status is the receiver's status; 0 when it did not answer (Err says why).
	Status int
	Err    string
	// OK is true for 200, 201, 202 and 204 (PERSONA.md §2).
	OK bool
	At time.Time
}

// Events returns every event emitted so far, in emission order, whether or not any
// WebhookURLs are configured.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Deliveries returns every delivery attempt so far, in the order they ended.
func (s *Server) Deliveries() []Delivery {
	return s.hooks.deliveries()
}

// emitLocked builds the event for q's current state and queues it for every webhook URL.
func (s *Server) emitLocked(name string, q *inquiry, at time.Time) {
	if at.After(q.updatedAt) {
		q.updatedAt = at
	}
	s.emitDocLocked(name, q.id, inquiryResource(q), at, s.opts.WebhookOmitCreatedAt)
}

// SetWebhooks switches webhook delivery on (the default) or off. While it is off, events are
// still emitted and listed by the Events API (GET /api/v1/events) but sent to no receiver:
// the outage, misconfigured secret or deleted webhook that reconciliation exists for
// (PERSONA.md §2). Events emitted while it was off are never delivered later.
func (s *Server) SetWebhooks(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhooksOff = !on
}

// signature returns a Persona-Signature header value for body sent at t (PERSONA.md §1):
// t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">.
func signature(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// dispatcher delivers events: one worker per URL sends first attempts in emission order;
// a failed delivery is retried on its own schedule in a goroutine of its own, so a failing
// event does not hold back later ones (Persona does not guarantee order, PERSONA.md §2).
type dispatcher struct {
	opts   Options
	logger *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queues []*queue

	mu  sync.Mutex
	log []Delivery
}

// queue is an unbounded FIFO of events for one URL.
type queue struct {
	url    string
	mu     sync.Mutex
	events []Event
	ready  chan struct{}
}

func newDispatcher(opts Options, logger *slog.Logger) *dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dispatcher{opts: opts, logger: logger, ctx: ctx, cancel: cancel}
	for _, u := range opts.WebhookURLs {
		q := &queue{url: u, ready: make(chan struct{}, 1)}
		d.queues = append(d.queues, q)
		d.wg.Add(1)
		go d.work(q)
	}
	return d
}

func (d *dispatcher) enqueue(ev Event) {
	for _, q := range d.queues {
		q.mu.Lock()
		q.events = append(q.events, ev)
		q.mu.Unlock()
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
}

func (d *dispatcher) close() {
	d.cancel()
	d.wg.Wait()
}

func (d *dispatcher) deliveries() []Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Delivery(nil), d.log...)
}

// work sends q's events as they come.
func (d *dispatcher) work(q *queue) {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-q.ready:
		}
		if d.opts.WebhookReorder {
			// Let events emitted together gather, then send them newest first.
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		q.mu.Lock()
		batch := q.events
		q.events = nil
		q.mu.Unlock()
		if d.opts.WebhookReorder {
			slices.Reverse(batch)
		}
		for _, ev := range batch {
			copies := 1
			if d.opts.WebhookDuplicates {
				copies = 2
			}
			for range copies {
				if d.ctx.Err() != nil {
					return
				}
				first := time.Now()
				if !d.attempt(q.url, ev, 1, first) && len(d.opts.WebhookRetryDelays) > 0 {
					d.wg.Add(1)
					go d.retry(q.url, ev, first)
				}
			}
		}
	}
}

// retry repeats a failed delivery on the retry schedule until it succeeds, the attempts run
// out, or the dispatcher closes.
func (d *dispatcher) retry(url string, ev Event, first time.Time) {
	defer d.wg.Done()
	for i, wait := range d.opts.WebhookRetryDelays {
		t := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if d.attempt(url, ev, i+2, first) {
			return
		}
	}
	d.logger.Warn("webhook delivery abandoned", "event_id", ev.ID, "event", ev.Name, "url", url,
		"attempts", 1+len(d.opts.WebhookRetryDelays))
}

// attempt sends ev once and reports whether the receiver accepted it (PERSONA.md §2: 200,
// 201, 202 or 204 within WebhookTimeout).
func (d *dispatcher) attempt(url string, ev Event, n int, first time.Time) bool {
	total := 1 + len(d.opts.WebhookRetryDelays)
	rec := Delivery{EventID: ev.ID, EventName: ev.Name, URL: url, Attempt: n, At: time.Now()}
	defer func() {
		d.mu.Lock()
		d.log = append(d.log, rec)
		d.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.Body))
	if err != nil {
		rec.Err = err.Error()
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Persona-Simulator")
	// t is the send time of this attempt on the real clock, which receivers compare with
	// their own (PERSONA.md §1).
	req.Header.Set("Persona-Signature", signature(d.opts.WebhookSecret, ev.Body, time.Now()))
	req.Header.Set("Persona-Webhook-Attempts-Made", strconv.Itoa(n))
	req.Header.Set("Persona-Webhook-Attempts-Left", strconv.Itoa(total-n))
	req.Header.Set("Persona-Webhook-First-Attempted-At", strconv.FormatInt(first.Unix(), 10))
	resp, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		rec.Err = err.Error()
		d.logger.Debug("webhook delivery failed", "event_id", ev.ID, "attempt", n, "err", err.Error())
		return false
	}
	resp.Body.Close()
	rec.Status = resp.StatusCode
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent:
		rec.OK = true
		return true
	}
	rec.Err = fmt.Sprintf("status %d", resp.StatusCode)
	d.logger.Debug("webhook delivery refused", "event_id", ev.ID, "attempt", n, "status", resp.StatusCode)
	return false
}
