package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
)

// Path is where Persona delivers webhooks; Register serves POST requests on it.
const Path = "/webhooks/persona"

// Defaults for the zero values of Options.
const (
	// DefaultMaxBodyBytes caps a request body; Persona's events are a few kilobytes.
	DefaultMaxBodyBytes int64 = 1 << 20
	// DefaultPublishTimeout bounds the wait for JetStream's PubAck, well inside the 5 s
	// Persona waits for an answer (PERSONA.md §2).
	DefaultPublishTimeout = 2 * time.Second
	// DefaultRetryAfter is the Retry-After sent with a 503.
	DefaultRetryAfter = 5 * time.Second
)

// Publisher stores a message in JetStream and returns its PubAck; jetstream.JetStream
// satisfies it. PublishMsg must give up when ctx is done, and must not keep msg.Data once it
// returns: the receiver reuses the buffer for its next request. The receiver treats an
// error, a nil PubAck or a PubAck from another stream alike: the event is not stored, and
// Persona is asked to retry.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// AsyncPublisher is a Publisher that can also publish without waiting for the PubAck and
// return a future for it; jetstream.JetStream satisfies it. When Options.Publisher is one,
// the requests in flight queue their messages, one goroutine at a time publishes everything
// queued back to back through PublishMsgAsync, and each request waits for its own future:
// the requests share the connection's writes and the server's replies instead of each making
// its own round trip. PublishMsgAsync is called from one goroutine at a time, never
// concurrently. A message still queued when its request gives up is not published. The
// receiver abandons a future when its publish times
// out; create the JetStream with jetstream.WithPublishAsyncTimeout (about the publish timeout)
// so that an abandoned future is dropped rather than counted against
// jetstream.WithPublishAsyncMaxPending until the connection reconnects.
type AsyncPublisher interface {
	Publisher
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Options configures a Receiver. Publisher and one non-empty secret are required; every other
// zero value means the default named on the field.
type Options struct {
	// Secrets are the webhook secrets (wbhsec_...) a signature may match. Keep two while
	// rotating; empty entries are ignored.
	Secrets [][]byte
	// Tolerance is how far a signature's timestamp may be from Now in either direction;
	// default DefaultTolerance.
	Tolerance time.Duration
	// MaxBodyBytes caps the request body; a larger one is answered 413. Default
	// DefaultMaxBodyBytes. Keep it below the NATS server's max_payload.
	MaxBodyBytes int64
	// PublishTimeout bounds the wait for the PubAck; default DefaultPublishTimeout.
	PublishTimeout time.Duration
	// RetryAfter is sent, rounded up to whole seconds, with every 503; default
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// Publisher stores events, normally a jetstream.JetStream. An AsyncPublisher is used
	// asynchronously unless SyncPublish is set.
	Publisher Publisher
	// SyncPublish makes the receiver call PublishMsg, one round trip per request, even when
	// Publisher is an AsyncPublisher. The guarantees are the same either way.
	SyncPublish bool
	// Stream is the stream the events subject must belong to; a publish that lands in any
	// other stream fails. Default eventstream.DefaultStream.
	Stream string
	// Subjects is the deployment's subject scheme (RESUMER_SUBJECT_PREFIX): events are
	// published as Subjects.Message builds them. The zero value is eventstream's default
	// prefix, persona.events.
	Subjects eventstream.Subjects
	// Logger receives the receiver's logs, with component=webhook; default: discard.
	Logger *slog.Logger
	// Registerer receives the receiver's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Now is the clock signatures are checked against and Resumer-Received-At is read from;
	// default time.Now.
	Now func() time.Time
}

// Receiver is the http.Handler for Persona's webhooks. It is safe for concurrent use.
type Receiver struct {
	tolerance      time.Duration
	maxBodyBytes   int64
	publishTimeout time.Duration
	retryAfter     string
	publisher      Publisher
	async          AsyncPublisher // nil: publish with publisher.PublishMsg
	stream         string
	subjects       eventstream.Subjects
	log            *slog.Logger
	now            func() time.Time
	metrics        *metrics
	// bodies recycles request body buffers (*bytes.Buffer): nothing refers to a body once
	// its event is acknowledged or refused before publishing (the NATS client copies what it
	// publishes, and the event's fields are copies). A body whose publish failed is not
	// recycled: an abandoned asynchronous publish may still be resent from it.
	bodies sync.Pool
	// macs hold keyed HMAC-SHA256 states, one pool per secret.
	macs macPools
	// queue feeds the asynchronous publisher (publish.go).
	queue publishQueue
}

// New returns a Receiver configured by opts. It fails when opts has no non-empty secret, no
// Publisher, or a negative duration or size. It registers the receiver's metrics with
// opts.Registerer and, like promauto, panics when that Registerer already holds them (two
// receivers need two registries, or prometheus.WrapRegistererWith).
func New(opts Options) (*Receiver, error) {
	var secrets [][]byte
	for _, s := range opts.Secrets {
		if len(s) > 0 {
			secrets = append(secrets, bytes.Clone(s))
		}
	}
	if len(secrets) == 0 {
		return nil, errors.New("create webhook receiver: no webhook secret: Options.Secrets holds no non-empty secret")
	}
	if opts.Publisher == nil {
		return nil, errors.New("create webhook receiver: Options.Publisher is nil")
	}
	switch {
	case opts.Tolerance < 0:
		return nil, fmt.Errorf("create webhook receiver: negative Options.Tolerance %v", opts.Tolerance)
	case opts.MaxBodyBytes < 0:
		return nil, fmt.Errorf("create webhook receiver: negative Options.MaxBodyBytes %d", opts.MaxBodyBytes)
	case opts.PublishTimeout < 0:
		return nil, fmt.Errorf("create webhook receiver: negative Options.PublishTimeout %v", opts.PublishTimeout)
	case opts.RetryAfter < 0:
		return nil, fmt.Errorf("create webhook receiver: negative Options.RetryAfter %v", opts.RetryAfter)
	}
	rc := &Receiver{
		tolerance:      orDefault(opts.Tolerance, DefaultTolerance),
		maxBodyBytes:   orDefault(opts.MaxBodyBytes, DefaultMaxBodyBytes),
		publishTimeout: orDefault(opts.PublishTimeout, DefaultPublishTimeout),
		publisher:      opts.Publisher,
		stream:         opts.Stream,
		subjects:       opts.Subjects,
		log:            opts.Logger,
		now:            opts.Now,
	}
	retryAfter := orDefault(opts.RetryAfter, DefaultRetryAfter)
	rc.retryAfter = strconv.FormatInt(int64(math.Ceil(retryAfter.Seconds())), 10)
	if rc.stream == "" {
		rc.stream = eventstream.DefaultStream
	}
	if rc.log == nil {
		rc.log = slog.New(slog.DiscardHandler)
	}
	rc.log = rc.log.With("component", "webhook")
	if rc.now == nil {
		rc.now = time.Now
	}
	if ap, ok := opts.Publisher.(AsyncPublisher); ok && !opts.SyncPublish {
		rc.async = ap
	}
	rc.macs = newMACPools(secrets)
	rc.metrics = newMetrics(opts.Registerer)
	return rc, nil
}

// orDefault returns v, or def when v is zero.
func orDefault[T int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Register serves the receiver on mux at "POST /webhooks/persona". Like mux.Handle, it panics
// when mux already has a conflicting pattern.
func (rc *Receiver) Register(mux *http.ServeMux) {
	mux.Handle(http.MethodPost+" "+Path, rc)
}

// ServeHTTP handles one webhook delivery, on any path; see the package documentation for the
// answers. A method other than POST is answered 405 and counted as malformed.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	o := rc.serve(w, r)
	rc.metrics.requests.WithLabelValues(string(o)).Inc()
	rc.metrics.requestDuration.Observe(time.Since(start).Seconds())
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) outcome {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, http.StatusMethodNotAllowed)
		return outcomeMalformed
	}
	// A missing or garbled header is refused before the body is read.
	sets, err := ParseSignatureHeader(r.Header.Get(SignatureHeader))
	if err != nil {
		return rc.unauthorized(w, err)
	}
	buf, _ := rc.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	recycle := true
	defer func() {
		if recycle && buf.Cap() <= maxPooledBody {
			buf.Reset()
			rc.bodies.Put(buf)
		}
	}()
	body, err := rc.readBody(w, r, buf)
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			rc.log.Warn("refuse webhook: body too large", "limit_bytes", rc.maxBodyBytes)
			refuse(w, http.StatusRequestEntityTooLarge)
			return outcomeTooLarge
		}
		rc.log.Debug("refuse webhook: read body", "err", err)
		refuse(w, http.StatusBadRequest)
		return outcomeMalformed
	}
	received := rc.now()
	if err := verifySets(sets, body, rc.macs.sum, len(rc.macs), received, rc.tolerance); err != nil {
		return rc.unauthorized(w, err)
	}
	// The envelope is all the receiver routes by; the worker reads the inquiry.
	ev, err := persona.ParseEnvelope(body)
	if err != nil {
		// Signed, yet not JSON or not an event envelope at all: nothing Persona sends
		// (PERSONA.md §3). Worth a look: Persona's format may have moved.
		rc.log.Warn("refuse webhook: malformed event", "err", err)
		refuse(w, http.StatusBadRequest)
		return outcomeMalformed
	}
	ack, err := rc.publish(r.Context(), ev, body, received)
	if err != nil {
		recycle = false
		rc.log.Warn("event not stored, asking Persona to retry",
			"event_id", ev.ID, "event_name", ev.Name, "err", err)
		w.Header().Set("Retry-After", rc.retryAfter)
		refuse(w, http.StatusServiceUnavailable)
		return outcomeUnavailable
	}
	if rc.log.Enabled(r.Context(), slog.LevelDebug) { // spare the arguments' allocations
		rc.log.Debug("event stored", "event_id", ev.ID, "event_name", ev.Name,
			"about_inquiry", ev.AboutInquiry(), "stream_seq", ack.Sequence, "duplicate", ack.Duplicate)
	}
	if ack.Duplicate {
		// Persona ignores it; `resumer webhook send` prints it.
		w.Header()[OutcomeHeader] = duplicateValue
		w.WriteHeader(http.StatusOK)
		return outcomeDuplicate
	}
	rc.metrics.events.WithLabelValues(persona.EventObject(ev.Name)).Inc()
	if ev.TimeSource != persona.TimeFromEvent {
		rc.metrics.timeFallbacks.WithLabelValues(timeSourceLabel(ev.TimeSource)).Inc()
	}
	w.WriteHeader(http.StatusOK)
	return outcomeAccepted
}

// OutcomeHeader is the response header that marks an event the stream already held: its
// value is "duplicate". A newly stored event's 200 has no such header.
const OutcomeHeader = "Resumer-Outcome"

var duplicateValue = []string{"duplicate"}

// readBody reads the whole body into buf, at most maxBodyBytes; beyond that the error is an
// *http.MaxBytesError.
func (rc *Receiver) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) ([]byte, error) {
	if r.ContentLength > rc.maxBodyBytes {
		return nil, &http.MaxBytesError{Limit: rc.maxBodyBytes}
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, rc.maxBodyBytes))
	return buf.Bytes(), err
}

// maxPooledBody is the largest body buffer kept for another request; Persona's events are a
// few kilobytes.
const maxPooledBody = 64 << 10

// unauthorized answers 401 with a generic body; the reason goes to a metric and a debug log,
// never the header, the secret or the body.
func (rc *Receiver) unauthorized(w http.ResponseWriter, err error) outcome {
	reason := failureReason(err)
	rc.metrics.verifyFailures.WithLabelValues(reason).Inc()
	rc.log.Debug("refuse webhook: signature", "reason", reason, "err", err)
	refuse(w, http.StatusUnauthorized)
	return outcomeUnauthorized
}

// publish stores the raw body in the stream, keyed by the event id for JetStream's duplicate
// window (see eventstream.Message: events about other objects than inquiries go to a subject
// of their own), and waits at most publishTimeout for the PubAck. It fails when JetStream is
// unreachable, slow, refuses the message, or acknowledges it from another stream.
func (rc *Receiver) publish(ctx context.Context, ev *persona.Event, body []byte, received time.Time) (*jetstream.PubAck, error) {
	msg := rc.subjects.Message(ev, body, received)
	start := time.Now()
	var ack *jetstream.PubAck
	var err error
	if rc.async != nil {
		ack, err = rc.publishAsync(ctx, msg)
	} else {
		ctx, cancel := context.WithTimeout(ctx, rc.publishTimeout)
		ack, err = rc.publisher.PublishMsg(ctx, msg, jetstream.WithExpectStream(rc.stream))
		cancel()
	}
	rc.metrics.publishDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("publish event to stream %s: %w", rc.stream, err)
	}
	if ack == nil || ack.Stream != rc.stream {
		return nil, fmt.Errorf("publish event to stream %s: no acknowledgement from that stream", rc.stream)
	}
	return ack, nil
}

// refuse answers code with its status text as a short, generic body.
func refuse(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}
