package state

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Defaults for the zero values of Config.
const (
	DefaultPrefix      = "resumer"
	DefaultShards      = 16
	DefaultEventMemory = 72 * time.Hour
	DefaultRetention   = 30 * 24 * time.Hour
	DefaultExpiry      = 24 * time.Hour // PERSONA.md §5: the template default after create
)

// DefaultRemindBefore are the reminder stages of a zero Config.RemindBefore: 6 hours and
// 1 hour before an inquiry expires. It returns a new slice on every call.
func DefaultRemindBefore() []time.Duration { return []time.Duration{6 * time.Hour, time.Hour} }

// TTLGrace was added to every record's TTL beyond its purge deadline.
//
// Deprecated: records no longer carry a TTL: they are fields of a per-shard hash, and the
// purge (run by every apply, every ClaimDue and Store.Purge) deletes them.
const TTLGrace = time.Hour

const (
	// rememberedEvents bounds the event ids a record remembers (7 to 10 bytes each). Older
	// ids are forgotten first; the status and field rules make a forgotten duplicate harmless.
	rememberedEvents = 6
	// purgeBudget is how many due records every apply script purges in its shard.
	purgeBudget = 4
)

// ErrNotFound is wrapped by Store.Inquiry when no record exists for the inquiry.
var ErrNotFound = errors.New("inquiry not found")

// ErrInvalidEvent is wrapped by the per-event error of an event the store cannot apply
// because it lacks an event id, an inquiry id or an event time. Retrying never helps.
var ErrInvalidEvent = errors.New("invalid event")

//go:embed lib.lua
var libLua string

//go:embed apply.lua
var applyLua string

//go:embed purge.lua
var purgeLua string

//go:embed read.lua
var readLua string

// Config configures a Store. Zero values take the defaults named in each field.
type Config struct {
	// Prefix starts every key, default "resumer". It must not contain '{' or '}', which
	// would change the hash tag.
	Prefix string
	// Shards is the fixed number of index shards, default 16. Never change it for an
	// existing prefix: inquiries would be looked up under other keys.
	Shards int
	// EventMemory is how long an event id is remembered per inquiry, default 72h.
	EventMemory time.Duration
	// Retention is how long a record is kept after it became final (any status other than
	// created or pending), and after the expires-at of a created/pending one; default 30 days.
	Retention time.Duration
	// ExpiryDefault is the template interval used to derive expires-at when an event does
	// not carry it and its template has no entry in ExpiryByTemplate; default 24h.
	ExpiryDefault time.Duration
	// ExpiryByTemplate holds template intervals by inquiry template id.
	ExpiryByTemplate map[string]time.Duration
	// RemindBefore are the reminder stages: stage d of a created/pending inquiry is due at
	// its expires-at minus d. Empty means DefaultRemindBefore. Each must be a positive whole
	// number of seconds, and their names distinct; a stage is recorded under the name
	// notify.StageName gives it ("6h", "90m", "45s"). The notifier must be given the same
	// stages.
	RemindBefore []time.Duration
	// FunnelRetention is how long a day's funnel counts are kept (see funnel.go); default
	// DefaultFunnelRetention.
	FunnelRetention time.Duration
	// Registerer registers the funnel's metrics (resumer_funnel_total,
	// resumer_funnel_completion_seconds), counted by the calls that record funnel steps; nil
	// registers them nowhere. Several stores may share one registerer.
	Registerer prometheus.Registerer
	// ReplicaAcks, when positive, makes every write wait until that many replicas of the
	// primary it ran on acknowledged it (Redis WAIT), or ReplicaTimeout passed, before the
	// caller hears of it: a Cluster or Sentinel failover that promotes a replica then keeps
	// every applied event and every recorded reminder intent. When fewer replicas answer in
	// time (one is down) the write still succeeds; set min-replicas-to-write on the servers to
	// refuse writes instead. Zero waits for none (a single node).
	ReplicaAcks int
	// ReplicaTimeout bounds the wait for ReplicaAcks, default DefaultReplicaTimeout.
	ReplicaTimeout time.Duration
	// WinbackContact keeps the e-mail address and first name of an inquiry that expired, for
	// its win-back message (ClaimWinbacks), instead of deleting them at expiry; the win-back
	// deletes them once done, the purge with the record at the latest (DESIGN.md decision 8).
	WinbackContact bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LeaseClockOffset, when set, is added to Redis's TIME wherever reminder leases are
	// taken and checked (ClaimDue). Leave it nil outside tests and benchmarks, which use it
	// to let leases run out without waiting for them.
	LeaseClockOffset func() time.Duration
}

// DefaultReplicaTimeout is the longest a write waits for its replicas (Config.ReplicaTimeout).
const DefaultReplicaTimeout = 500 * time.Millisecond

// Store keeps inquiry records and their indexes in Redis. It is safe for concurrent use; all
// of its state is in Redis, so any number of replicas can share one.
type Store struct {
	client redis.UniversalClient
	cfg    Config
	keys   keys
	apply  *redis.Script
	purge  *redis.Script
	// stageArg is Config.RemindBefore as the scripts take it: "<name>:<ms>,...".
	stageArg string
	claim    *redis.Script
	settle   *redis.Script
	backlog  *redis.Script
	read     *redis.Script
	mark     *redis.Script
	winback  *redis.Script
	funnel   funnelMetrics
	// templateNames caches template ids by templateRef (immutable once assigned).
	templateNames sync.Map
}

// New returns a Store on client. It does not contact Redis (use Ping for that); it fails only
// when cfg is invalid: a prefix with '{' or '}', a negative shard count or duration, or a
// reminder stage that is not a positive whole number of seconds or shares its name.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("new state store: nil redis client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("new state store: prefix %q must not contain '{' or '}'", cfg.Prefix)
	}
	if cfg.Shards == 0 {
		cfg.Shards = DefaultShards
	}
	if cfg.Shards < 0 {
		return nil, fmt.Errorf("new state store: shards %d: must be positive", cfg.Shards)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"event memory", &cfg.EventMemory, DefaultEventMemory},
		{"retention", &cfg.Retention, DefaultRetention},
		{"default expiry", &cfg.ExpiryDefault, DefaultExpiry},
		{"funnel retention", &cfg.FunnelRetention, DefaultFunnelRetention},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return nil, fmt.Errorf("new state store: %s %v: must be positive", d.name, *d.v)
		}
	}
	templates := make(map[string]time.Duration, len(cfg.ExpiryByTemplate))
	for id, d := range cfg.ExpiryByTemplate {
		if d <= 0 {
			return nil, fmt.Errorf("new state store: expiry of template %s %v: must be positive", id, d)
		}
		templates[id] = d
	}
	cfg.ExpiryByTemplate = templates
	stageArg, err := stageArgument(cfg.RemindBefore)
	if err != nil {
		return nil, fmt.Errorf("new state store: %w", err)
	}
	if len(cfg.RemindBefore) == 0 {
		cfg.RemindBefore = DefaultRemindBefore()
	}
	if cfg.ReplicaAcks < 0 || cfg.ReplicaTimeout < 0 {
		return nil, fmt.Errorf("new state store: replica acks %d, timeout %v: must not be negative", cfg.ReplicaAcks, cfg.ReplicaTimeout)
	}
	if cfg.ReplicaTimeout == 0 {
		cfg.ReplicaTimeout = DefaultReplicaTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{
		client:   client,
		cfg:      cfg,
		keys:     keys{prefix: cfg.Prefix, shards: uint32(cfg.Shards)},
		apply:    redis.NewScript(libLua + applyLua),
		purge:    redis.NewScript(libLua + purgeLua),
		stageArg: stageArg,
		claim:    redis.NewScript(libLua + claimLua),
		settle:   redis.NewScript(libLua + settleLua),
		backlog:  redis.NewScript(libLua + backlogLua),
		read:     redis.NewScript(libLua + readLua),
		winback:  redis.NewScript(libLua + winbackLua),
		mark:     redis.NewScript(libLua + funnelMarkLua),
		funnel:   newFunnelMetrics(cfg.Registerer),
	}, nil
}

// probeTTL is how long a health probe's key lives.
const probeTTL = time.Minute

// Ping checks that Redis accepts writes under the store's prefix, as applying events needs: it
// sets a short-lived probe key ("<prefix>:{<shard>}:hp", expiring after a minute) in every
// shard, so on Redis Cluster every primary that holds a shard is asked. A Redis that answers
// PING but refuses writes (OOM under noeviction, READONLY after a failover, LOADING,
// MASTERDOWN, CLUSTERDOWN, TRYAGAIN) fails it. The error is the connection's or Redis' error;
// IsUnavailable holds for it.
func (s *Store) Ping(ctx context.Context) error {
	stamp := s.now().UnixMilli()
	pipe := s.client.Pipeline()
	for shard := range int(s.keys.shards) {
		pipe.Set(ctx, s.keys.probe(shard), stamp, probeTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("probe redis with a write under %s: %w", s.cfg.Prefix, err)
	}
	return nil
}

// interval is the template interval for deriving expires-at.
func (s *Store) interval(templateID string) time.Duration {
	if d, ok := s.cfg.ExpiryByTemplate[templateID]; ok {
		return d
	}
	return s.cfg.ExpiryDefault
}

func (s *Store) now() time.Time { return s.cfg.Now() }
