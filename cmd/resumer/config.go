package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resumer/resumer/api"
	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/redisconn"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/notify"
)

// config is everything the roles need, read from flags, RESUMER_* variables and *_FILE
// secrets, in that order of precedence.
type config struct {
	Roles          []string
	HTTPAddr       string
	AdminAddr      string
	NATSURL        string
	Stream         string
	Subjects       eventstream.Subjects
	DevNATSSync    eventstream.Sync
	StreamReplicas int
	StreamMaxAge   time.Duration
	DedupWindow    time.Duration
	DLQStream      string
	Consumer       string
	MaxDeliver     int
	BatchSize      int
	RedisURL       string
	RedisPrefix    string
	RedisShards    int
	// RedisReplicaAcks is how many replicas must acknowledge each write; -1 (auto): one on a
	// Cluster or Sentinel URL, none on a single node.
	RedisReplicaAcks int
	// RedisTLS names the CA and client certificate files of a rediss URL (zero: none).
	RedisTLS redisconn.TLSFiles

	WebhookSecrets   [][]byte
	WebhookTolerance time.Duration
	WebhookMaxBody   int64
	PublishTimeout   time.Duration

	EventMemory      time.Duration
	Retention        time.Duration
	ExpiryDefault    time.Duration
	ExpiryByTemplate map[string]time.Duration

	PersonaAPIURL  string
	PersonaAPIKey  string
	PersonaVersion string
	PersonaRate    int

	RemindBefore        []time.Duration
	MinRemaining        time.Duration
	NotifyInterval      time.Duration
	NotifyLease         time.Duration
	NotifyConcurrency   int
	LinkMode            notify.LinkMode
	HostedFlowURL       string
	RedirectURI         string
	PublicURL           string
	LinkSecret          []byte
	LinkSingleUse       bool
	Brands              *brand.Set
	BrandsFile          string
	LocaleField         string
	Channels            []string
	SMTPURL             string
	SMTPPassword        string
	SMTPRequireTLS      bool
	MailFrom            string
	TemplatesDir        string
	NotifyWebhookURL    string
	NotifyWebhookSecret string
	HoldoutPercent      float64
	HoldoutSalt         string
	FunnelRetention     time.Duration

	WinbackWithin   time.Duration
	RecheckAfter    time.Duration
	WinbackLinkMode notify.LinkMode

	ReconcileInterval time.Duration
	ReconcileBudget   float64
	ReconcileLookback time.Duration

	APIKeys             []api.APIKey
	ResumeMinRemaining  time.Duration
	ResumeExpiredWithin time.Duration
	ResumeMintLimit     int
	ResumeMintWindow    time.Duration
	APIKeyRate          int
	ResumeTimeout       time.Duration
	ResumeMaxAge        time.Duration
	ResumeMaxAgeByTmpl  map[string]time.Duration
	FallbackTemplates   []string
	CurrentVersionOnly  bool

	LogLevel        slog.Level
	ShutdownTimeout time.Duration

	// httpListener, when set (by `resumer dev`), is the public listener, bound before the
	// roles start so the Persona simulator knows where to deliver webhooks.
	httpListener net.Listener

	// devHandlers are extra admin routes `resumer dev` adds (the caught-mail page).
	devHandlers map[string]http.Handler

	// explicit records which variables were given (flag, env or file) rather than defaulted;
	// `resumer dev` embeds NATS only when RESUMER_NATS_URL is not explicit.
	explicit map[string]bool

	// values records each variable's raw value and its source, for `config check`.
	values map[string]settingValue
}

// allRoles are the roles `serve` can run, in start order.
var allRoles = []string{"webhook", "worker", "notify", "api", "reconcile"}

// setting is one configuration variable: its environment name, default, help text, whether
// it may come from a *_FILE, and how it is stored into config.
type setting struct {
	env    string
	def    string
	usage  string
	secret bool
	// kind names the value's type in the flag help; empty: inferred from def (settingKind).
	kind string
	set  func(c *config, v string) error
}

// settings lists every variable resumer reads. The README's configuration table is checked
// against it by TestREADMEListsEverySetting.
var settings = []setting{
	{env: "RESUMER_ROLES", def: "webhook,worker,notify,api", usage: "roles `serve` runs: comma-separated subset of " + strings.Join(allRoles, ","),
		set: func(c *config, v string) error {
			roles, err := parseRoles(v)
			c.Roles = roles
			return err
		}},
	{env: "RESUMER_HTTP_ADDR", def: ":8080", usage: "public listener (Persona webhooks, resume API, /r/ links)", set: setAddr(func(c *config) *string { return &c.HTTPAddr })},
	{env: "RESUMER_ADMIN_ADDR", def: ":9464", usage: "admin listener: /metrics, /healthz, /readyz, /report", set: setAddr(func(c *config) *string { return &c.AdminAddr })},
	{env: "RESUMER_NATS_URL", def: "nats://127.0.0.1:4222", usage: "NATS server URL(s), comma-separated; `dev` embeds a server unless this is set", secret: true,
		set: func(c *config, v string) error {
			for _, u := range strings.Split(v, ",") {
				if _, err := url.Parse(strings.TrimSpace(u)); err != nil || strings.TrimSpace(u) == "" {
					return fmt.Errorf("invalid URL %q", u)
				}
			}
			c.NATSURL = v
			return nil
		}},
	{env: "RESUMER_STREAM", def: "PERSONA_EVENTS", usage: "JetStream stream holding received events", set: setName(func(c *config) *string { return &c.Stream })},
	{env: "RESUMER_SUBJECT_PREFIX", def: eventstream.DefaultSubjectPrefix, usage: "prefix of the events subjects (<prefix>.<event name>; the stream claims <prefix>.>): one per deployment sharing a NATS account",
		set: func(c *config, v string) error {
			if v == "" {
				return errors.New("want a subject prefix such as persona.events")
			}
			s, err := eventstream.NewSubjects(v)
			if err != nil {
				return err
			}
			c.Subjects = s
			return nil
		}},
	{env: "RESUMER_DEV_NATS_SYNC", def: "always", usage: "`dev` only: how often its embedded NATS fsyncs JetStream: always (before every PubAck) or an interval such as 1s (nats-server's default is 2m)",
		set: func(c *config, v string) error {
			s, err := eventstream.ParseSync(v)
			c.DevNATSSync = s
			return err
		}},
	{env: "RESUMER_STREAM_REPLICAS", def: "1", usage: "stream replicas (3 on a NATS cluster)", set: setInt(1, 5, func(c *config) *int { return &c.StreamReplicas })},
	{env: "RESUMER_STREAM_MAX_AGE", def: "7d", usage: "how long the stream keeps events for replay", set: setDuration(time.Minute, func(c *config) *time.Duration { return &c.StreamMaxAge })},
	{env: "RESUMER_DEDUP_WINDOW", def: "1h", usage: "JetStream duplicate window for event ids", set: setDuration(time.Second, func(c *config) *time.Duration { return &c.DedupWindow })},
	{env: "RESUMER_DLQ_STREAM", def: "PERSONA_DLQ", usage: "dead-letter stream for events that cannot be applied", set: setName(func(c *config) *string { return &c.DLQStream })},
	{env: "RESUMER_CONSUMER", def: "state", usage: "durable consumer name of the worker", set: setName(func(c *config) *string { return &c.Consumer })},
	{env: "RESUMER_MAX_DELIVER", def: "10", usage: "the delivery at which an event that fails on its own is dead-lettered (store outages never count)", set: setInt(1, 1000, func(c *config) *int { return &c.MaxDeliver })},
	{env: "RESUMER_BATCH_SIZE", def: "256", usage: "events the worker fetches and applies per batch", set: setInt(1, 10000, func(c *config) *int { return &c.BatchSize })},
	{env: "RESUMER_REDIS_URL", def: "redis://127.0.0.1:6379/0", usage: "Redis URL: redis:// or rediss:// (one node), redis+cluster:// or several addr= seeds (Cluster), redis+sentinel://s1:26379,s2:26379/mymaster/0 (Sentinel); passwords in the URL (README: Scaling out)", secret: true,
		set: func(c *config, v string) error {
			if _, _, err := redisconn.Parse(v); err != nil {
				return err
			}
			c.RedisURL = v
			return nil
		}},
	{env: "RESUMER_REDIS_TLS_CA_FILE", usage: "PEM file of the CA(s) that sign the Redis servers' (and Sentinels') certificates, trusted instead of the system's roots; needs a rediss URL",
		set: func(c *config, v string) error {
			c.RedisTLS.CAFile = v
			if v == "" {
				return nil
			}
			return checkRedisTLS(c.RedisURL, redisconn.TLSFiles{CAFile: v})
		}},
	{env: "RESUMER_REDIS_TLS_CERT_FILE", usage: "PEM client certificate sent to Redis servers that ask for one (tls-auth-clients yes); needs RESUMER_REDIS_TLS_KEY_FILE and a rediss URL",
		set: func(c *config, v string) error {
			c.RedisTLS.CertFile = v
			return nil
		}},
	{env: "RESUMER_REDIS_TLS_KEY_FILE", usage: "PEM private key of RESUMER_REDIS_TLS_CERT_FILE",
		set: func(c *config, v string) error {
			c.RedisTLS.KeyFile = v
			if v == "" && c.RedisTLS.CertFile == "" {
				return nil
			}
			return checkRedisTLS(c.RedisURL, redisconn.TLSFiles{CertFile: c.RedisTLS.CertFile, KeyFile: v})
		}},
	{env: "RESUMER_REDIS_REPLICA_ACKS", def: "auto", usage: "replicas that must acknowledge every write (Redis WAIT, up to 500ms) before an event is acked or a reminder sent; auto: 1 on a Cluster or Sentinel URL, 0 on one node",
		set: func(c *config, v string) error {
			if v == "auto" {
				c.RedisReplicaAcks = -1
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 5 {
				return fmt.Errorf("want auto or an integer from 0 to 5, got %q", v)
			}
			c.RedisReplicaAcks = n
			return nil
		}},
	{env: "RESUMER_REDIS_PREFIX", def: "resumer", usage: "prefix of every Redis key", set: setName(func(c *config) *string { return &c.RedisPrefix })},
	{env: "RESUMER_REDIS_SHARDS", def: "16", usage: "shards of the expiry index (fixed once data exists)", set: setInt(1, 16384, func(c *config) *int { return &c.RedisShards })},
	{env: "RESUMER_WEBHOOK_SECRETS", usage: "Persona webhook secrets (wbhsec_...), comma-separated during rotation", secret: true,
		set: func(c *config, v string) error {
			c.WebhookSecrets = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					c.WebhookSecrets = append(c.WebhookSecrets, []byte(s))
				}
			}
			return nil
		}},
	{env: "RESUMER_WEBHOOK_TOLERANCE", def: "5m", usage: "accepted clock skew of a signature's timestamp, both ways", set: setDuration(time.Second, func(c *config) *time.Duration { return &c.WebhookTolerance })},
	{env: "RESUMER_WEBHOOK_MAX_BODY", def: "1048576", usage: "largest webhook body in bytes (larger: 413)",
		set: func(c *config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1024 || n > 64<<20 {
				return errors.New("want a byte count between 1024 and 67108864")
			}
			c.WebhookMaxBody = n
			return nil
		}},
	{env: "RESUMER_PUBLISH_TIMEOUT", def: "2s", usage: "wait for JetStream's ack before answering 503", set: setDuration(10*time.Millisecond, func(c *config) *time.Duration { return &c.PublishTimeout })},
	{env: "RESUMER_EVENT_MEMORY", def: "72h", usage: "how long an event id is remembered per inquiry", set: setDuration(time.Minute, func(c *config) *time.Duration { return &c.EventMemory })},
	{env: "RESUMER_RETENTION", def: "30d", usage: "how long a record is kept after its inquiry became final", set: setDuration(time.Minute, func(c *config) *time.Duration { return &c.Retention })},
	{env: "RESUMER_EXPIRY_DEFAULT", def: "24h", usage: "expiry interval when an event has no expires-at", set: setDuration(time.Minute, func(c *config) *time.Duration { return &c.ExpiryDefault })},
	{env: "RESUMER_EXPIRY_BY_TEMPLATE", usage: "per-template expiry intervals, e.g. itmpl_a=48h,itmpl_b=7d",
		set: func(c *config, v string) error {
			m, err := parseTemplateIntervals(v)
			c.ExpiryByTemplate = m
			return err
		}},
	{env: "RESUMER_PERSONA_API_URL", def: "https://api.withpersona.com", usage: "Persona API base URL; `dev` runs a simulator unless this is set",
		set: func(c *config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("want an http(s) URL")
			}
			c.PersonaAPIURL = strings.TrimRight(v, "/")
			return nil
		}},
	{env: "RESUMER_PERSONA_API_KEY", usage: "Persona API key (persona_production_... or persona_sandbox_...)", secret: true,
		set: func(c *config, v string) error { c.PersonaAPIKey = v; return nil }},
	{env: "RESUMER_PERSONA_VERSION", def: "2023-01-05", usage: "Persona-Version header pinning the API version",
		set: func(c *config, v string) error { c.PersonaVersion = v; return nil }},
	{env: "RESUMER_PERSONA_RATE", def: "240", usage: "Persona API calls per minute, shared by all replicas through Redis (Persona allows 300)",
		set: setInt(1, 100000, func(c *config) *int { return &c.PersonaRate })},
	{env: "RESUMER_REMIND_BEFORE", def: "6h,1h", usage: "reminder stages: remind this long before an inquiry expires",
		set: func(c *config, v string) error {
			c.RemindBefore = nil
			for _, part := range strings.Split(v, ",") {
				d, err := parseDuration(strings.TrimSpace(part))
				if err != nil || d < time.Minute {
					return fmt.Errorf("want durations of at least 1m, got %q", part)
				}
				if slices.Contains(c.RemindBefore, d) {
					return fmt.Errorf("stage %s listed twice", d)
				}
				c.RemindBefore = append(c.RemindBefore, d)
			}
			return nil
		}},
	{env: "RESUMER_MIN_REMAINING", def: "15m", usage: "a stage found late is still sent when at least this much time is left", set: setDuration(0, func(c *config) *time.Duration { return &c.MinRemaining })},
	{env: "RESUMER_NOTIFY_INTERVAL", def: "15s", usage: "time between sweeps of the reminder schedule (jittered)", set: setDuration(100*time.Millisecond, func(c *config) *time.Duration { return &c.NotifyInterval })},
	{env: "RESUMER_NOTIFY_LEASE", def: "2m", usage: "how long a replica owns a claimed reminder, on Redis's clock, before another may take it over: sending ends by half of it, settling is retried until a tenth is left", set: setDuration(5*time.Second, func(c *config) *time.Duration { return &c.NotifyLease })},
	{env: "RESUMER_NOTIFY_CONCURRENCY", def: "8", usage: "send slots: reminders one replica claims and sends at once (it claims no more than it has free slots and Persona budget)", set: setInt(1, 1000, func(c *config) *int { return &c.NotifyConcurrency })},
	{env: "RESUMER_LINK_MODE", def: "session-token", usage: "reminder link: session-token, one-time-link or redirect",
		set: func(c *config, v string) error {
			m, err := notify.ParseLinkMode(v)
			c.LinkMode = m
			return err
		}},
	{env: "RESUMER_HOSTED_FLOW_URL", def: link.DefaultHostedFlowURL, usage: "Persona hosted flow that session-token links open", set: setHTTPURL(func(c *config) *string { return &c.HostedFlowURL })},
	{env: "RESUMER_REDIRECT_URI", usage: "where the hosted flow sends the user when done (redirect-uri)", set: setHTTPURL(func(c *config) *string { return &c.RedirectURI })},
	{env: "RESUMER_PUBLIC_URL", usage: "public base URL of this service, for redirect links (/r/...)", set: setHTTPURL(func(c *config) *string { return &c.PublicURL })},
	{env: "RESUMER_LINK_SECRET", usage: "key (at least 32 bytes) signing redirect links", secret: true,
		set: func(c *config, v string) error {
			if v != "" && len(v) < link.MinSecretLen {
				return fmt.Errorf("want at least %d bytes", link.MinSecretLen)
			}
			c.LinkSecret = []byte(v)
			return nil
		}},
	{env: "RESUMER_LINK_SINGLE_USE", def: "false", usage: "redirect links open the hosted flow once; a used link shows a page offering a fresh e-mail",
		set: func(c *config, v string) error {
			b, err := strconv.ParseBool(v)
			c.LinkSingleUse = b
			return err
		}},
	{env: "RESUMER_BRANDS_FILE", usage: "YAML or JSON file of brands (name, logo, colour, support, footer, sender, locale, templates) picked per inquiry template or reference prefix",
		set: func(c *config, v string) error {
			c.BrandsFile, c.Brands = v, nil
			if v == "" {
				return nil
			}
			s, err := brand.Load(v, notify.Locales())
			c.Brands = s
			return err
		}},
	{env: "RESUMER_LOCALE_FIELD", usage: "inquiry field (e.g. locale or address-country-code) whose language tag or country code picks the reminder's language (en, es, de); else the brand's",
		set: func(c *config, v string) error {
			for _, r := range v {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
					return fmt.Errorf("%q is not an inquiry field name", v)
				}
			}
			c.LocaleField = v
			return nil
		}},
	{env: "RESUMER_CHANNELS", def: "email", usage: "reminder channels: email, webhook or both, comma-separated",
		set: func(c *config, v string) error {
			c.Channels = nil
			for _, ch := range strings.Split(v, ",") {
				ch = strings.TrimSpace(ch)
				if ch != "email" && ch != "webhook" {
					return fmt.Errorf("unknown channel %q (want email or webhook)", ch)
				}
				if !slices.Contains(c.Channels, ch) {
					c.Channels = append(c.Channels, ch)
				}
			}
			return nil
		}},
	{env: "RESUMER_SMTP_URL", usage: "SMTP server: smtp://user:pass@host:587 (STARTTLS) or smtps://host:465; `dev` runs a catcher unless set", secret: true,
		set: func(c *config, v string) error {
			if v != "" {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
					return errors.New("want an smtp:// or smtps:// URL")
				}
			}
			c.SMTPURL = v
			return nil
		}},
	{env: "RESUMER_SMTP_PASSWORD", usage: "SMTP password, replacing the URL's", secret: true,
		set: func(c *config, v string) error { c.SMTPPassword = v; return nil }},
	{env: "RESUMER_SMTP_REQUIRE_TLS", def: "false", usage: "refuse to send over smtp:// without STARTTLS",
		set: func(c *config, v string) error {
			b, err := strconv.ParseBool(v)
			c.SMTPRequireTLS = b
			return err
		}},
	{env: "RESUMER_MAIL_FROM", usage: "sender of reminder e-mails, e.g. `Acme <verify@acme.example>`",
		set: func(c *config, v string) error { c.MailFrom = v; return nil }},
	{env: "RESUMER_TEMPLATES_DIR", usage: "directory whose *.tmpl files replace the embedded e-mail templates",
		set: func(c *config, v string) error { c.TemplatesDir = v; return nil }},
	{env: "RESUMER_NOTIFY_WEBHOOK_URL", usage: "customer endpoint the webhook channel POSTs reminders to", set: setHTTPURL(func(c *config) *string { return &c.NotifyWebhookURL })},
	{env: "RESUMER_NOTIFY_WEBHOOK_SECRET", usage: "Standard Webhooks secret (whsec_...) signing reminder webhooks", secret: true,
		set: func(c *config, v string) error { c.NotifyWebhookSecret = v; return nil }},
	{env: "RESUMER_RECHECK_AFTER", def: "0s", usage: "before reminding about an inquiry whose newest event is older than this, ask Persona for its status (100 per call) and drop it when finished (0: never)", set: setDuration(0, func(c *config) *time.Duration { return &c.RecheckAfter })},
	{env: "RESUMER_WINBACK_WITHIN", def: "0s", usage: "send one win-back message once an inquiry expired, while its expiry is younger than this (0: off); keeps the e-mail of expired inquiries until then", set: setDuration(0, func(c *config) *time.Duration { return &c.WinbackWithin })},
	{env: "RESUMER_WINBACK_LINK_MODE", def: "redirect", usage: "win-back link: redirect (/r/ link, minted on click; the api role then resumes expired inquiries for RESUMER_WINBACK_WITHIN) or one-time-link (resume now, 2 Persona calls)",
		set: func(c *config, v string) error {
			m, err := notify.ParseLinkMode(v)
			if err == nil && m != notify.LinkRedirect && m != notify.LinkOneTimeLink {
				err = fmt.Errorf("want redirect or one-time-link, got %q", v)
			}
			c.WinbackLinkMode = m
			return err
		}},
	{env: "RESUMER_RECONCILE_INTERVAL", def: "15m", usage: "time between reconciliation passes of the reconcile role (replay missed events, re-check open inquiries)", set: setDuration(time.Second, func(c *config) *time.Duration { return &c.ReconcileInterval })},
	{env: "RESUMER_RECONCILE_BUDGET", def: "20%", usage: "share of RESUMER_PERSONA_RATE reconciliation may use, and only while reminders and the API leave it free",
		set: func(c *config, v string) error {
			f, err := parseShare(v)
			c.ReconcileBudget = f
			return err
		}},
	{env: "RESUMER_RECONCILE_LOOKBACK", def: "48h", usage: "how far back the first replay of Persona's events reads (no checkpoint yet); keep it within RESUMER_EVENT_MEMORY", set: setDuration(time.Minute, func(c *config) *time.Duration { return &c.ReconcileLookback })},
	{env: "RESUMER_HOLDOUT_PERCENT", def: "0", usage: "share of inquiries (0 to 100, e.g. 5) whose reminders are skipped and recorded held_out, to measure the uplift",
		set: func(c *config, v string) error {
			p, err := strconv.ParseFloat(v, 64)
			if err != nil || p < 0 || p > 100 {
				return fmt.Errorf("want a percentage from 0 to 100, got %q", v)
			}
			c.HoldoutPercent = p
			return nil
		}},
	{env: "RESUMER_HOLDOUT_SALT", usage: "per-deployment salt of the holdout hash; required when RESUMER_HOLDOUT_PERCENT is above 0, keep it fixed", secret: true,
		set: func(c *config, v string) error { c.HoldoutSalt = v; return nil }},
	{env: "RESUMER_FUNNEL_RETENTION", def: "400d", usage: "how long the daily recovery funnel counts are kept in Redis", set: setDuration(24*time.Hour, func(c *config) *time.Duration { return &c.FunnelRetention })},
	{env: "RESUMER_API_KEYS", usage: "resume API keys, `;`-separated: name=acme sha256=<hex> scopes=inquiries:read,sessions:create reference_prefix=acme-", secret: true,
		set: func(c *config, v string) error {
			keys, err := api.ParseAPIKeys(v)
			c.APIKeys = keys
			return err
		}},
	{env: "RESUMER_RESUME_MIN_REMAINING", def: "1m", usage: "the resume API refuses inquiries with less time left (inquiry_expiring)", set: setDuration(0, func(c *config) *time.Duration { return &c.ResumeMinRemaining })},
	{env: "RESUMER_RESUME_EXPIRED_WITHIN", def: "0s", usage: "resume expired inquiries that expired at most this long ago (0: never)", set: setDuration(0, func(c *config) *time.Duration { return &c.ResumeExpiredWithin })},
	{env: "RESUMER_RESUME_MINT_LIMIT", def: "5", usage: "session tokens minted per inquiry per mint window (API and /r/ links together)", set: setInt(1, 25, func(c *config) *int { return &c.ResumeMintLimit })},
	{env: "RESUMER_RESUME_MINT_WINDOW", def: "1h", usage: "window of the per-inquiry mint limit", set: setDuration(time.Minute, func(c *config) *time.Duration { return &c.ResumeMintWindow })},
	{env: "RESUMER_API_KEY_RATE", def: "60", usage: "requests per minute each API key may make", set: setInt(1, 1000000, func(c *config) *int { return &c.APIKeyRate })},
	{env: "RESUMER_RESUME_TIMEOUT", def: "10s", usage: "bound on one Persona resume call made by the API, retries included", set: setDuration(100*time.Millisecond, func(c *config) *time.Duration { return &c.ResumeTimeout })},
	{env: "RESUMER_RESUME_MAX_AGE", def: "30d", usage: "refuse to resume inquiries created longer ago (inquiry_too_old): a newer template version may be out; 0: no limit", set: setDuration(0, func(c *config) *time.Duration { return &c.ResumeMaxAge })},
	{env: "RESUMER_RESUME_MAX_AGE_BY_TEMPLATE", usage: "per-template maximum ages, e.g. itmpl_a=7d,itmpl_b=90d",
		set: func(c *config, v string) error {
			m, err := parseTemplateIntervals(v)
			c.ResumeMaxAgeByTmpl = m
			return err
		}},
	{env: "RESUMER_RESUME_CURRENT_VERSION_ONLY", def: "false", usage: "refuse to resume inquiries pinned to an older template version than the published one (inquiry_too_old; one Persona call per template per 10 min)",
		set: func(c *config, v string) error {
			b, err := strconv.ParseBool(v)
			c.CurrentVersionOnly = b
			return err
		}},
	{env: "RESUMER_FALLBACK_TEMPLATES", usage: "templates (comma-separated, or *) whose refusals offer a static hosted-flow link that starts a new inquiry for the same reference id (fallback_url)",
		set: func(c *config, v string) error {
			c.FallbackTemplates = nil
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					c.FallbackTemplates = append(c.FallbackTemplates, t)
				}
			}
			return nil
		}},
	{env: "RESUMER_LOG_LEVEL", def: "info", usage: "debug, info, warn or error",
		set: func(c *config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{env: "RESUMER_SHUTDOWN_TIMEOUT", def: "20s", usage: "grace period for draining on SIGTERM", set: setDuration(time.Second, func(c *config) *time.Duration { return &c.ShutdownTimeout })},
}

// checkRedisTLS reports whether files can be applied to the Redis URL: it is a rediss one
// and the files load (see redisconn.TLSFiles.Apply).
func checkRedisTLS(redisURL string, files redisconn.TLSFiles) error {
	opts, _, err := redisconn.Parse(redisURL)
	if err != nil {
		return fmt.Errorf("RESUMER_REDIS_URL: %w", err)
	}
	return files.Apply(opts)
}

// flagName turns RESUMER_HTTP_ADDR into http-addr.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "RESUMER_")), "_", "-")
}

// loadConfig parses flags from args over the environment. A bad value is an error that names
// the variable; args left after the flags are returned.
// extra, when not nil, registers a command's own flags; flags and positional arguments may be
// interleaved ("inquiry show inq_1 --json").
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra ...func(*flag.FlagSet)) (*config, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, synopsis(name))
	for _, register := range extra {
		register(fs)
	}
	flagVals := make(map[string]*string, len(settings))
	for _, s := range settings {
		help := s.usage + " (env " + s.env
		if s.secret {
			help += ", or " + s.env + "_FILE"
		}
		help += ")"
		flagVals[s.env] = fs.String(flagName(s.env), s.def, help)
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	c := &config{explicit: map[string]bool{}, values: map[string]settingValue{}}
	for _, s := range settings {
		v, source, err := lookup(s, given[flagName(s.env)], *flagVals[s.env], getenv)
		if err != nil {
			return nil, nil, err
		}
		c.explicit[s.env] = source != "default"
		c.values[s.env] = settingValue{raw: v, source: source}
		if err := s.set(c, v); err != nil {
			return nil, nil, fmt.Errorf("%s: invalid value: %w", s.env, err)
		}
	}
	return c, positional, nil
}

// lookup returns a setting's value and its source: the flag when given ("flag"), else the
// variable ("env"), else the variable's _FILE ("file", secrets only), else the default
// ("default"). A secret set both plainly and as _FILE is an error, not a silent choice.
func lookup(s setting, flagGiven bool, flagVal string, getenv func(string) string) (string, string, error) {
	v := getenv(s.env)
	if s.secret && v != "" && getenv(s.env+"_FILE") != "" {
		return "", "", fmt.Errorf("%s and %s_FILE are both set: set only one", s.env, s.env)
	}
	if flagGiven {
		return flagVal, "flag", nil
	}
	if v != "" {
		return v, "env", nil
	}
	if s.secret {
		if path := getenv(s.env + "_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", "", fmt.Errorf("%s_FILE: read: %w", s.env, err)
			}
			return strings.TrimSpace(string(b)), "file", nil
		}
	}
	return s.def, "default", nil
}

func parseRoles(v string) ([]string, error) {
	var roles []string
	for _, r := range strings.Split(v, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if r == "all" {
			return slices.Clone(allRoles), nil
		}
		if !slices.Contains(allRoles, r) {
			return nil, fmt.Errorf("unknown role %q (want %s)", r, strings.Join(allRoles, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("no role")
	}
	return roles, nil
}

// parseDuration is time.ParseDuration that also accepts a whole number of days ("7d").
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

func parseTemplateIntervals(v string) (map[string]time.Duration, error) {
	m := map[string]time.Duration{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		id, d, ok := strings.Cut(pair, "=")
		id = strings.TrimSpace(id)
		if !ok || id == "" {
			return nil, fmt.Errorf("want template=duration, got %q", pair)
		}
		dur, err := parseDuration(strings.TrimSpace(d))
		if err != nil || dur < time.Minute {
			return nil, fmt.Errorf("template %s: want a duration of at least 1m, got %q", id, d)
		}
		m[id] = dur
	}
	return m, nil
}

func setAddr(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if !strings.Contains(v, ":") {
			return fmt.Errorf("want host:port, got %q", v)
		}
		*field(c) = v
		return nil
	}
}

// setHTTPURL accepts an empty value or an absolute http(s) URL.
func setHTTPURL(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("want an absolute http(s) URL")
			}
		}
		*field(c) = v
		return nil
	}
}

func setName(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if v == "" || strings.ContainsAny(v, " \t.*>{}") {
			return fmt.Errorf("want a non-empty name without spaces, dots, braces or wildcards, got %q", v)
		}
		*field(c) = v
		return nil
	}
}

func setInt(lo, hi int, field func(*config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want an integer from %d to %d, got %q", lo, hi, v)
		}
		*field(c) = n
		return nil
	}
}

func setDuration(min time.Duration, field func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		if d < min {
			return fmt.Errorf("want at least %s, got %s", min, v)
		}
		*field(c) = d
		return nil
	}
}

// settingsMarkdown renders the configuration table the README carries.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "–"
		} else {
			def = "`" + def + "`"
		}
		usage := s.usage
		if s.secret {
			usage += "; also `" + s.env + "_FILE`"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | %s | %s |\n", s.env, flagName(s.env), def, usage)
	}
	return b.String()
}
