package state

import (
	"cmp"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
)

//go:embed schedule_claim.lua
var claimLua string

//go:embed schedule_settle.lua
var settleLua string

//go:embed schedule_backlog.lua
var backlogLua string

// claimFields is the number of reply entries schedule_claim.lua returns per claim, after its
// claimHeader leading entries (Redis's now, the leases' end, the stages' added times).
const (
	claimFields = 5
	claimHeader = 3
)

// Claim is one inquiry whose next reminder is due, claimed by Store.ClaimDue with a lease:
// until LeaseUntil no other ClaimDue returns it, and only the holder of LeaseToken can settle
// it (CompleteReminder, ReleaseClaim, DropReminders). Its fields are the record as it was at
// the claim, read atomically with it: the notifier's re-read before sending (DESIGN.md
// decision 5). EmailAddress and NameFirst are personal data: never log them.
type Claim struct {
	InquiryID string
	Status    persona.Status
	ExpiresAt time.Time // zero when unknown (the inquiry is then never scheduled)
	// CreatedAt is the inquiry's created-at, zero when unknown (for the maximum age).
	CreatedAt time.Time
	// LastEventAt is the event time of the newest event applied to the inquiry.
	LastEventAt time.Time
	ReferenceID string
	// TemplateID is the inquiry's template (itmpl_...), empty when unknown or when it could
	// not be read (ClaimDue then still returns the claim).
	TemplateID   string
	EmailAddress string
	NameFirst    string
	// Locale is the inquiry's locale field (Inquiry.Locale), or "".
	Locale string
	// RemindersSent is the record's reminder list (see Inquiry.RemindersSent): the stages
	// done, and ChannelMark entries of channels done with a stage still being retried.
	RemindersSent []string
	// Attempts counts the ReleaseClaim calls since the inquiry's last completed stage: the
	// transient failures of the reminder now due, for the caller's backoff.
	Attempts int
	// LeaseToken identifies this claim; settling with an older token fails.
	LeaseToken string
	// LeaseUntil is when the lease runs out, on Redis's clock (TIME at the claim plus the
	// lease): after it any ClaimDue takes the inquiry over.
	LeaseUntil time.Time
	// LeaseLeft is how much of the lease was left when Redis answered the claim. A holder
	// that started its ClaimDue call at t (its own clock) holds the lease until at least
	// t + LeaseLeft, whatever the skew between its clock and Redis's.
	LeaseLeft time.Duration
	// TookOver is true when the claim replaced a lease that ran out unsettled (its holder
	// crashed, hung or lost Redis): a lease expiry.
	TookOver bool
	// Attribution, set by the caller before CompleteReminder, describes the reminder sent or
	// held out, for the recovery funnel (see funnel.go). Zero counts nothing.
	Attribution Attribution
	// Intent is the stage an earlier holder of a lease that ran out was about to send
	// (RecordIntent), or "". Its send may or may not have happened: the stage must not be
	// sent again (settle it done, as uncertain).
	Intent string
	// StagesAdded holds, per stage of the claimer's configuration, when it was added to a
	// configuration that already had stages (the claimer's clock): such a stage applies only
	// to inquiries whose due time for it is at or after then. A stage that is absent, or
	// added at the zero time, has applied from the start.
	StagesAdded map[string]time.Time
	// template is the record's template code, for nameTemplates.
	template templateRef
}

// StageApplies reports whether stage name, due at dueAt for this inquiry, applies to it: its
// due time is not before the stage was added (see StagesAdded).
func (c Claim) StageApplies(name string, dueAt time.Time) bool {
	added, ok := c.StagesAdded[name]
	return !ok || added.IsZero() || !dueAt.Before(added)
}

// StageDone reports whether stage (a stage name like "6h") is done for the inquiry.
func (c Claim) StageDone(stage string) bool { return slices.Contains(c.RemindersSent, stage) }

// ChannelDone reports whether channel is done with stage, by an earlier ReleaseClaim that
// carried ChannelMark(stage, channel).
func (c Claim) ChannelDone(stage, channel string) bool {
	return slices.Contains(c.RemindersSent, ChannelMark(stage, channel))
}

// ChannelMark is the entry ReleaseClaim records for a channel that is done with a stage
// (delivered, or failed for good) while another channel is still retrying it:
// "<stage>@<channel>". CompleteReminder removes a stage's marks when the stage is done.
func ChannelMark(stage, channel string) string { return stage + "@" + channel }

// StageName is the canonical name of the reminder stage due d before expiry, used in Redis
// and in metric labels: whole hours "6h", else whole minutes "90m", else the duration with
// its zero units left out, "23h59m58s" or "45s" (never a bare count of seconds such as
// "86398s"). Fractions of a second are dropped.
func StageName(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	name := d.String() // "23h59m58s", "1h0m5s", "45s"
	name = strings.Replace(name, "h0m", "h", 1)
	return name
}

func stageName(d time.Duration) string { return StageName(d) }

// stageArgument returns the stages as the scripts take them, "<name>:<ms>,...", longest
// first; the defaults when stages is empty. It fails on a stage that is not a positive whole
// number of seconds and on two stages with one name.
func stageArgument(stages []time.Duration) (string, error) {
	if len(stages) == 0 {
		stages = DefaultRemindBefore()
	}
	sorted := slices.Clone(stages)
	slices.SortFunc(sorted, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	parts := make([]string, 0, len(sorted))
	seen := map[string]bool{}
	for _, d := range sorted {
		if d <= 0 || d%time.Second != 0 {
			return "", fmt.Errorf("reminder stage %v: want a positive whole number of seconds", d)
		}
		name := stageName(d)
		if seen[name] {
			return "", fmt.Errorf("reminder stage %v: name %s given twice", d, name)
		}
		seen[name] = true
		parts = append(parts, name+":"+strconv.FormatInt(d.Milliseconds(), 10))
	}
	return strings.Join(parts, ","), nil
}

// ClaimDue claims up to limit inquiries whose next reminder is due at or before now, soonest
// expires-at first across all shards, and leases each for lease. It makes two pipelined
// round trips, one script call per shard each: the first reads every shard's candidates
// (expired leases, the queue, each stage's sweep; see schedule_claim.lua), the second claims
// in each shard those among the limit soonest overall. A claim writes a fresh lease token and
// the lease's end, taken from Redis's TIME (never a replica's clock), to the inquiry's shard.
// The cost follows the due work: queues and expiry indexes are read by score with a LIMIT,
// never scanned. Settle every claim with CompleteReminder, ReleaseClaim or DropReminders
// before its LeaseUntil; a claim left unsettled is taken over by a later ClaimDue
// (Claim.TookOver), together with its send intent (Claim.Intent). Each shard's claim also
// purges a few records whose retention is over (see Purge), by the store's clock.
//
// The error is non-nil when lease or limit is not positive, when Redis failed as a whole (no
// claims then), or when some shards' scripts failed: then the claims of the other shards are
// returned with it, and the failed shards' due inquiries wait for the next call.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Claim, error) {
	if lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("claim due reminders: lease %v and limit %d must be positive", lease, limit)
	}
	var raw [9]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("claim due reminders: make lease token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	nowMs := now.UnixMilli()
	offset := s.leaseOffset().Milliseconds()
	args := func(mode string, limit int, maxExpiry string) []any {
		return []any{nowMs, lease.Milliseconds(), limit, token, s.stageArg,
			s.now().UnixMilli(), s.cfg.Retention.Milliseconds(), purgeBudget, mode, maxExpiry, offset}
	}
	calls := make([]scriptCall, s.cfg.Shards)
	for shard := range calls {
		calls[shard] = scriptCall{keys: s.keys.shardKeys(shard), args: args("peek", limit, "")}
	}
	cmds, err := s.runScript(ctx, s.claim, calls)
	if err != nil {
		return nil, fmt.Errorf("claim due reminders: %w", err)
	}
	var errs []error
	type candidate struct {
		expiry int64
		shard  int
	}
	var cands []candidate
	for shard, cmd := range cmds {
		xs, err := cmd.Int64Slice()
		if err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", shard, err))
			continue
		}
		for _, x := range xs {
			cands = append(cands, candidate{x, shard})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(a.expiry, b.expiry) })
	cands = cands[:min(len(cands), limit)]
	take := map[int]int{}
	bound := map[int]int64{}
	for _, c := range cands {
		take[c.shard]++
		bound[c.shard] = c.expiry
	}
	shards := slices.Sorted(maps.Keys(take))
	calls = calls[:0]
	for _, shard := range shards {
		calls = append(calls, scriptCall{keys: s.keys.shardKeys(shard),
			args: args("claim", take[shard], strconv.FormatInt(bound[shard], 10))})
	}
	var claims []Claim
	if len(calls) > 0 {
		cmds, err = s.runScript(ctx, s.claim, calls)
		if err != nil {
			return nil, fmt.Errorf("claim due reminders: %w", err)
		}
		for i, cmd := range cmds {
			got, err := decodeClaims(cmd, shards[i])
			if err != nil {
				errs = append(errs, fmt.Errorf("shard %d: %w", shards[i], err))
			}
			claims = append(claims, got...)
		}
	}
	slices.SortStableFunc(claims, func(a, b Claim) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	if err := s.nameTemplates(ctx, claims); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return claims, fmt.Errorf("claim due reminders: %w", err)
	}
	return claims, nil
}

// leaseOffset is Config.LeaseClockOffset's value, 0 when it is nil.
func (s *Store) leaseOffset() time.Duration {
	if s.cfg.LeaseClockOffset == nil {
		return 0
	}
	return s.cfg.LeaseClockOffset()
}

// decodeClaims turns one shard's claim script reply into claims. A claim whose record does
// not decode is left out (its lease runs out unsettled); the error reports it.
func decodeClaims(cmd *redis.Cmd, shard int) ([]Claim, error) {
	reply, err := cmd.StringSlice()
	if err != nil {
		return nil, err
	}
	if len(reply) < claimHeader || (len(reply)-claimHeader)%claimFields != 0 {
		return nil, fmt.Errorf("unexpected claim reply of %d entries", len(reply))
	}
	added := map[string]time.Time{}
	for _, e := range strings.Split(reply[2], ",") {
		name, ms, ok := strings.Cut(e, "=")
		if v, err := strconv.ParseInt(ms, 10, 64); ok && err == nil && v > 0 {
			added[name] = time.UnixMilli(v).UTC()
		}
	}
	redisNow, err1 := strconv.ParseInt(reply[0], 10, 64)
	ends, err2 := strconv.ParseInt(reply[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("unexpected claim reply: %w", err)
	}
	until := time.UnixMilli(ends).UTC()
	left := time.Duration(ends-redisNow) * time.Millisecond
	reply = reply[claimHeader:]
	claims := make([]Claim, 0, len(reply)/claimFields)
	var errs []error
	for i := 0; i < len(reply); i += claimFields {
		f := reply[i : i+claimFields]
		c := Claim{
			LeaseToken:  f[2],
			LeaseUntil:  until,
			LeaseLeft:   left,
			TookOver:    f[3] == "1",
			Intent:      f[4],
			StagesAdded: added,
		}
		var r record
		if err := decodeRecord(f[1], &r); err != nil {
			// Without the record there is no inquiry id to settle the claim with: its lease
			// runs out and a later claim takes it over, meeting the same record.
			errs = append(errs, fmt.Errorf("inquiry with handle %x: %w", f[0], err))
			continue
		}
		c.InquiryID = joinID(f[0], r.rest)
		c.Status = persona.Status(r.str[idxStatus])
		c.ReferenceID = r.str[idxReference]
		c.EmailAddress = r.str[idxEmail]
		c.NameFirst = r.str[idxNameFirst]
		c.Locale = r.str[idxLocale]
		c.ExpiresAt = r.time(idxExpiresAt)
		c.CreatedAt = r.time(idxCreatedAt)
		c.LastEventAt = r.time(idxLastAt)
		c.RemindersSent = r.reminders()
		c.Attempts = int(r.num[idxAttempts])
		c.template = templateRef{shard: shard, code: r.num[idxTemplate]}
		claims = append(claims, c)
	}
	return claims, errors.Join(errs...)
}

// DueBacklog returns how many inquiries have a reminder due at or before now that nobody has
// claimed: queued ones due by now (claimed ones are parked out of reach) and those
// that the sweeps of the next ClaimDue would read (an upper bound: the sweeps pass by
// inquiries whose stage was done in the meantime). One small script per shard in one
// pipelined round trip, for a gauge; the error is Redis' error.
func (s *Store) DueBacklog(ctx context.Context, now time.Time) (int64, error) {
	calls := make([]scriptCall, s.cfg.Shards)
	for shard := range calls {
		calls[shard] = scriptCall{
			keys: []string{s.keys.expiry(shard), s.keys.queue(shard), s.keys.cursors(shard)},
			args: []any{now.UnixMilli(), s.stageArg},
		}
	}
	cmds, err := s.runScript(ctx, s.backlog, calls)
	if err != nil {
		return 0, fmt.Errorf("count due reminders: %w", err)
	}
	var n int64
	for shard, cmd := range cmds {
		v, err := cmd.Int64()
		if err != nil {
			return 0, fmt.Errorf("count due reminders of shard %d: %w", shard, err)
		}
		n += v
	}
	return n, nil
}
