package state

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/promreg"
)

// The recovery funnel follows every reminder: the notifier records each reminder it sends, or
// holds out (CompleteReminder with Claim.Attribution), the api records the link being opened
// and its button pressed (MarkLink), and applying events records what the user did next. Each
// step is counted at most once per reminder, in the record's attribution of the inquiry's
// last reminder, which lives only until the inquiry is final. Counts go to daily buckets in
// Redis (one hash per shard and UTC day of the store's clock, kept Config.FunnelRetention)
// and to Prometheus (Config.Registerer); Store.Funnel reads the buckets of any period.

// Funnel steps: the values of FunnelCount.Step and of the "outcome" label of
// resumer_funnel_total.
const (
	// StepReminder: a reminder of the stage was sent (group reminded) or held out (group
	// held_out).
	StepReminder = "reminder"
	// StepInquiry: the inquiry's first reminder (sent or held out); the denominator of the
	// per-inquiry completion rate.
	StepInquiry = "inquiry"
	// StepOpened: the reminder's /r/ page was viewed.
	StepOpened = "opened"
	// StepPressed: its button was pressed (a token minted and the user sent to Persona).
	StepPressed = "pressed"
	// StepResumed: the flow resumed after the reminder: inquiry-session.started,
	// inquiry.started or inquiry.transitioned, or a completion.
	StepResumed = "resumed"
	// StepCompleted: the inquiry completed after the reminder (completed, or needs_review,
	// approved or declined without a completed first).
	StepCompleted = "completed"
	// Outcomes after the reminder: the status moved to one of these.
	StepNeedsReview = "needs_review"
	StepApproved    = "approved"
	StepDeclined    = "declined"
	StepFailed      = "failed"
	StepExpired     = "expired"
)

// FunnelSteps are the funnel steps in funnel order.
var FunnelSteps = []string{
	StepReminder, StepInquiry, StepOpened, StepPressed, StepResumed, StepCompleted,
	StepNeedsReview, StepApproved, StepDeclined, StepFailed, StepExpired,
}

// Groups of the holdout: Attribution.Group and the "group" label of resumer_funnel_total.
const (
	GroupReminded = "reminded"
	GroupHeldOut  = "held_out"
)

// FunnelBounds are the upper bounds of the histogram of the time from a reminder to the
// completion it is attributed to; FunnelCount.Elapsed has one more bucket, above the last.
// lib.lua's FUNNEL_BOUNDS holds the same values in seconds.
var FunnelBounds = []time.Duration{
	5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	4 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour,
	7 * 24 * time.Hour,
}

// DefaultFunnelRetention is how long a day's funnel counts are kept when
// Config.FunnelRetention is zero.
const DefaultFunnelRetention = 400 * 24 * time.Hour

// Attribution describes one reminder for the funnel: its holdout group, stage, the channels
// that delivered it ("email", "email+webhook"; for a held-out one, those that would have
// been tried), the link mode and the brand. Every value must be bounded (no ids) and free of
// '|'.
type Attribution struct {
	Group    string
	Stage    string
	Channel  string
	LinkMode string
	Brand    string
}

// String is the stored form "group|stage|channel|link mode|brand".
func (a Attribution) String() string {
	return strings.Join([]string{a.Group, a.Stage, a.Channel, a.LinkMode, a.Brand}, "|")
}

// IsZero reports whether a is the zero Attribution (no reminder to count).
func (a Attribution) IsZero() bool { return a == Attribution{} }

// validate checks that a can be stored.
func (a Attribution) validate() error {
	if a.Group != GroupReminded && a.Group != GroupHeldOut {
		return fmt.Errorf("funnel attribution: group %q is neither %s nor %s", a.Group, GroupReminded, GroupHeldOut)
	}
	if a.Stage == "" {
		return errors.New("funnel attribution: no stage")
	}
	for _, v := range []string{a.Stage, a.Channel, a.LinkMode, a.Brand} {
		if strings.ContainsAny(v, "|,:") || len(v) > 64 {
			return fmt.Errorf("funnel attribution: value %q has '|', ',' or ':' or is too long", v)
		}
	}
	return nil
}

// parseAttribution is String's inverse.
func parseAttribution(s string) Attribution {
	p := strings.SplitN(s, "|", 5)
	for len(p) < 5 {
		p = append(p, "")
	}
	return Attribution{Group: p[0], Stage: p[1], Channel: p[2], LinkMode: p[3], Brand: p[4]}
}

// FunnelCount is one counter of a day's funnel: how often Step happened to reminders with
// Attribution, counted on Day (UTC) of the store's clock when the step happened.
type FunnelCount struct {
	Day         time.Time
	Attribution Attribution
	Step        string
	Count       int64
}

// FunnelElapsed is a day's histogram of the time from reminder to completion for one
// attribution: Buckets[i] counts completions within FunnelBounds[i] (and above the previous
// bound); the last entry counts those above every bound.
type FunnelElapsed struct {
	Day         time.Time
	Attribution Attribution
	Buckets     []int64
}

// FunnelData is what Store.Funnel returns.
type FunnelData struct {
	From, To time.Time // the days read, inclusive (UTC midnight)
	Counts   []FunnelCount
	Elapsed  []FunnelElapsed
}

// funnelMetrics are the Prometheus side of the funnel; nil fields count nothing.
type funnelMetrics struct {
	steps   *prometheus.CounterVec
	elapsed *prometheus.HistogramVec
}

func newFunnelMetrics(reg prometheus.Registerer) funnelMetrics {
	if reg == nil {
		return funnelMetrics{}
	}
	buckets := make([]float64, len(FunnelBounds))
	for i, b := range FunnelBounds {
		buckets[i] = b.Seconds()
	}
	return funnelMetrics{
		steps: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_funnel_total",
			Help: "Recovery funnel steps of reminders, each counted once per reminder: outcome is the step (reminder, inquiry, opened, pressed, resumed, completed, needs_review, approved, declined, failed, expired); group is reminded or held_out.",
		}, []string{"group", "stage", "channel", "link_mode", "outcome"})),
		elapsed: promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "resumer_funnel_completion_seconds",
			Help:    "Time from the last reminder (sent or held out) to the completion attributed to it.",
			Buckets: buckets,
		}, []string{"group", "stage"})),
	}
}

// count records steps of attribution a, and the time to completion when elapsed >= 0.
func (m funnelMetrics) count(a Attribution, steps []string, elapsed time.Duration) {
	if m.steps == nil {
		return
	}
	for _, st := range steps {
		m.steps.WithLabelValues(a.Group, a.Stage, a.Channel, a.LinkMode, st).Inc()
	}
	if elapsed >= 0 {
		m.elapsed.WithLabelValues(a.Group, a.Stage).Observe(elapsed.Seconds())
	}
}

// funnelDay is the UTC day of t, as a key suffix: "20260107".
func funnelDay(t time.Time) string { return t.UTC().Format("20060102") }

// funnelBucket returns shard's funnel bucket of the day of now and when it expires (unix s):
// the end of the day plus the funnel retention.
func (s *Store) funnelBucket(shard int, now time.Time) (string, int64) {
	return s.keys.funnel(shard, funnelDay(now)), s.funnelExpireAt(now.UnixMilli())
}

// Link steps MarkLink counts.
const (
	LinkOpened  = StepOpened
	LinkPressed = StepPressed
)

//go:embed funnel_mark.lua
var funnelMarkLua string

// MarkLink records that the link of inquiryID's last reminder was used: step is LinkOpened
// (its page viewed) or LinkPressed (its button pressed, which also counts it opened). Each is
// counted once per reminder; an inquiry without a reminder on record (none sent, or final
// already) counts nothing. It reports whether anything was counted. The error says step is
// unknown, or is Redis' error (the count may then be missing; the link works regardless).
func (s *Store) MarkLink(ctx context.Context, inquiryID, step string) (bool, error) {
	if step != LinkOpened && step != LinkPressed {
		return false, fmt.Errorf("mark link of inquiry %s: unknown step %q", inquiryID, step)
	}
	shard := s.keys.shard(inquiryID)
	handle, rest := splitID(inquiryID)
	bucket, expireAt := s.funnelBucket(shard, s.now())
	call := scriptCall{
		keys: []string{s.keys.records(shard), s.keys.templates(shard), bucket},
		args: []any{handle, rest, step, expireAt},
	}
	cmds, err := s.runScript(ctx, s.mark, []scriptCall{call})
	if err != nil {
		return false, fmt.Errorf("mark link of inquiry %s: %w", inquiryID, err)
	}
	reply, err := cmds[0].StringSlice()
	if err != nil {
		return false, fmt.Errorf("mark link of inquiry %s: %w", inquiryID, err)
	}
	if len(reply) < 2 {
		return false, nil
	}
	s.funnel.count(parseAttribution(reply[0]), strings.Split(reply[1], ","), -1)
	return true, nil
}

// Funnel reads the funnel counts of the UTC days from the day of from to the day of to,
// summed over the shards, in one pipelined round trip. Days older than the funnel retention
// read as empty. The error is Redis' error, or says to is before from or the period is longer
// than the retention allows.
func (s *Store) Funnel(ctx context.Context, from, to time.Time) (*FunnelData, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	if to.Before(from) {
		return nil, fmt.Errorf("read funnel: period ends (%s) before it starts (%s)", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	days := int(to.Sub(from)/(24*time.Hour)) + 1
	if days > 3660 {
		return nil, fmt.Errorf("read funnel: %d days is too long a period", days)
	}
	pipe := s.client.Pipeline()
	type read struct {
		day   time.Time
		shard int
		cmd   *redis.MapStringStringCmd
	}
	reads := make([]read, 0, days*int(s.keys.shards))
	for d := range days {
		day := from.Add(time.Duration(d) * 24 * time.Hour)
		for shard := range int(s.keys.shards) {
			reads = append(reads, read{day, shard, pipe.HGetAll(ctx, s.keys.funnel(shard, funnelDay(day)))})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read funnel: %w", err)
	}
	// Resolve the attribution codes of each shard that has any.
	codes := map[int]map[string]bool{}
	for _, r := range reads {
		for field := range r.cmd.Val() {
			code, _, ok := strings.Cut(field, ":")
			if !ok {
				continue
			}
			if codes[r.shard] == nil {
				codes[r.shard] = map[string]bool{}
			}
			codes[r.shard][code] = true
		}
	}
	dims := map[int]map[string]Attribution{}
	if len(codes) > 0 {
		pipe = s.client.Pipeline()
		lookups := map[int]*redis.SliceCmd{}
		lists := map[int][]string{}
		for shard, set := range codes {
			var list, fields []string
			for code := range set {
				list = append(list, code)
				fields = append(fields, "#"+code)
			}
			lists[shard] = list
			lookups[shard] = pipe.HMGet(ctx, s.keys.templates(shard), fields...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read funnel attributions: %w", err)
		}
		for shard, cmd := range lookups {
			dims[shard] = map[string]Attribution{}
			for i, v := range cmd.Val() {
				if str, ok := v.(string); ok && strings.HasPrefix(str, "\x01") {
					dims[shard][lists[shard][i]] = parseAttribution(str[1:])
				}
			}
		}
	}
	type countKey struct {
		day  time.Time
		attr Attribution
		step string
	}
	type histKey struct {
		day  time.Time
		attr Attribution
	}
	counts := map[countKey]int64{}
	hists := map[histKey][]int64{}
	for _, r := range reads {
		for field, v := range r.cmd.Val() {
			code, step, ok := strings.Cut(field, ":")
			attr, known := dims[r.shard][code]
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || !known || err != nil {
				continue
			}
			if i, isHist := strings.CutPrefix(step, "h"); isHist {
				b, err := strconv.Atoi(i)
				if err != nil || b < 1 || b > len(FunnelBounds)+1 {
					continue
				}
				k := histKey{r.day, attr}
				if hists[k] == nil {
					hists[k] = make([]int64, len(FunnelBounds)+1)
				}
				hists[k][b-1] += n
				continue
			}
			counts[countKey{r.day, attr, step}] += n
		}
	}
	out := &FunnelData{From: from, To: to}
	for k, n := range counts {
		out.Counts = append(out.Counts, FunnelCount{Day: k.day, Attribution: k.attr, Step: k.step, Count: n})
	}
	for k, b := range hists {
		out.Elapsed = append(out.Elapsed, FunnelElapsed{Day: k.day, Attribution: k.attr, Buckets: b})
	}
	slices.SortFunc(out.Counts, func(a, b FunnelCount) int {
		return strings.Compare(a.Day.Format(time.DateOnly)+a.Attribution.String()+a.Step, b.Day.Format(time.DateOnly)+b.Attribution.String()+b.Step)
	})
	slices.SortFunc(out.Elapsed, func(a, b FunnelElapsed) int {
		return strings.Compare(a.Day.Format(time.DateOnly)+a.Attribution.String(), b.Day.Format(time.DateOnly)+b.Attribution.String())
	})
	return out, nil
}

// funnelReply parses the funnel part of an apply script reply: { outcome, attribution, steps,
// ms since the reminder or -1 }.
func (s *Store) funnelReply(v []any) (string, error) {
	if len(v) != 4 {
		return "", fmt.Errorf("unexpected script reply of %d entries", len(v))
	}
	outcome, _ := v[0].(string)
	attr, _ := v[1].(string)
	steps, _ := v[2].(string)
	ms, _ := v[3].(int64)
	elapsed := time.Duration(-1)
	if ms >= 0 {
		elapsed = time.Duration(ms) * time.Millisecond
	}
	s.funnel.count(parseAttribution(attr), strings.Split(steps, ","), elapsed)
	return outcome, nil
}

// funnelExpireAt is when the funnel bucket of the day of now (unix ms) expires (unix s).
func (s *Store) funnelExpireAt(now int64) int64 {
	day := time.UnixMilli(now).UTC().Truncate(24 * time.Hour)
	return day.Add(24*time.Hour + s.cfg.FunnelRetention).Unix()
}
