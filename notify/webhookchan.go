package notify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/brand"
)

// ReminderEventType is the type field of the webhook channel's JSON body.
const ReminderEventType = "inquiry.reminder"

// maxWebhookResponse is how much of a webhook response body is read (and discarded) so the
// connection can be reused; the rest is dropped with the connection.
const maxWebhookResponse = 64 << 10

// WebhookOptions configures a WebhookChannel.
type WebhookOptions struct {
	// URL is the customer's endpoint; an absolute http(s) URL. Required.
	URL string
	// Secret signs the requests. A value starting with "whsec_" is a Standard Webhooks secret:
	// the rest is base64 and the decoded bytes are the HMAC key. Any other value is used as
	// the key as it is. Required.
	Secret string
	// Timeout bounds one request, response headers and the bounded body read included;
	// 10 s when zero.
	Timeout time.Duration
	// Client sends the requests; a client that never follows redirects when nil. A given
	// client's redirect policy is used as it is.
	Client *http.Client
	// Brands pick the brand of each reminder exactly as for EmailOptions.Brands (by the
	// inquiry's template id, else its reference id, else the default); the body names it in
	// "brand" and writes its default locale into "locale" when the inquiry's own locale names
	// none of Locales. nil (no brands file): no "brand", and "locale" falls back to
	// brand.DefaultLocale.
	Brands *brand.Set
	// Now is the clock for the webhook-timestamp header; time.Now when nil.
	Now func() time.Time
	// Logger gets a debug line per sent reminder (never the link); nothing when nil.
	Logger *slog.Logger
	// Registerer registers the channel metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

// WebhookChannel delivers reminders to the customer's backend as a signed JSON POST, so the
// customer can reach the user in its own way. Requests are signed like Standard Webhooks
// (standardwebhooks.com): headers webhook-id, webhook-timestamp and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>"). The id is stable per inquiry and stage
// ("rem_<hash>"), so a receiver can drop a retried delivery it already handled.
//
// The body is {"type":"inquiry.reminder","inquiry_id","reference_id","stage","expires_at",
// "link","template_id","locale","brand"}, expires_at in RFC 3339 UTC. template_id is the
// inquiry's Persona template (omitted when unknown); locale is the language resumer's own
// e-mail to this user would be written in (one of Locales, chosen as the e-mail channel
// chooses it: the inquiry's locale field, else the brand's default, else "en"); brand is
// the ID of the brand picked for the inquiry (omitted without a brands file), so that a
// customer who writes its own message can pick its copy and language. Win-back messages
// use the same body with stage "winback". It is safe for concurrent use.
type WebhookChannel struct {
	url     string
	key     []byte
	timeout time.Duration
	client  *http.Client
	brands  *brand.Set
	now     func() time.Time
	log     *slog.Logger
	metrics channelMetrics
}

var _ Channel = (*WebhookChannel)(nil)

// NewWebhookChannel checks opts and returns the channel. It fails on a URL that is not an
// absolute http(s) URL, an empty secret and a whsec_ secret that is not base64.
func NewWebhookChannel(opts WebhookOptions) (*WebhookChannel, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("configure reminder webhook: url is not an absolute http(s) url")
	}
	key, err := WebhookKey(opts.Secret)
	if err != nil {
		return nil, fmt.Errorf("configure reminder webhook: %w", err)
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &WebhookChannel{
		url:     opts.URL,
		key:     key,
		timeout: cmp.Or(opts.Timeout, 10*time.Second),
		client:  client,
		brands:  opts.Brands,
		now:     now,
		log:     log.With("component", "notify", "channel", "webhook"),
		metrics: newChannelMetrics(opts.Registerer, "webhook"),
	}, nil
}

// WebhookKey returns the HMAC key of a webhook secret: the base64-decoded rest of a
// "whsec_" secret (standard or unpadded base64), or the secret's bytes otherwise. It fails on
// an empty secret or key and on a whsec_ secret that does not decode.
func WebhookKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("decode webhook secret: empty")
	}
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(rest)
	}
	if err != nil || len(key) == 0 {
		return nil, errors.New("decode webhook secret: whsec_ secret is not base64")
	}
	return key, nil
}

// SignWebhook returns the webhook-signature header value for a delivery: "v1," and the
// base64 HMAC-SHA256, keyed with key, of id + "." + timestamp + "." + body. Receivers (and
// tests) compute the same value and compare it with hmac.Equal.
func SignWebhook(key []byte, id string, timestamp int64, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// WebhookID returns the webhook-id of an inquiry's reminder stage: "rem_" and 32 hex digits
// of SHA-256 over the inquiry id and stage. It is the same for every attempt.
func WebhookID(inquiryID, stage string) string { return "rem_" + reminderHash(inquiryID, stage) }

// webhookBody is the JSON the channel posts. Receivers written before template_id, locale
// and brand existed keep working: fields are only ever added.
type webhookBody struct {
	Type        string `json:"type"`
	InquiryID   string `json:"inquiry_id"`
	ReferenceID string `json:"reference_id"`
	Stage       string `json:"stage"`
	ExpiresAt   string `json:"expires_at"`
	Link        string `json:"link"`
	// TemplateID is the inquiry's Persona template (itmpl_...); omitted when unknown.
	TemplateID string `json:"template_id,omitempty"`
	// Locale is the locale (one of Locales) an e-mail to the user would be written in.
	Locale string `json:"locale"`
	// Brand is the ID of the brand picked for the inquiry; omitted without brands.
	Brand string `json:"brand,omitempty"`
}

// body returns the JSON body of r: its brand and locale picked as the e-mail channel picks
// them (brandAndLocale).
func (c *WebhookChannel) body(r *Reminder) webhookBody {
	b, locale := brandAndLocale(c.brands, r)
	brandID := ""
	if len(c.brands.All()) > 0 {
		brandID = b.ID // brand.Neutral (no brands file) is not named
	}
	return webhookBody{
		Type:        ReminderEventType,
		InquiryID:   r.InquiryID,
		ReferenceID: r.ReferenceID,
		Stage:       r.Stage.Name,
		ExpiresAt:   r.ExpiresAt.UTC().Format(time.RFC3339),
		Link:        r.Link,
		TemplateID:  r.TemplateID,
		Locale:      locale,
		Brand:       brandID,
	}
}

// Name returns "webhook".
func (c *WebhookChannel) Name() string { return "webhook" }

// Send makes one signed POST of r. A 2xx answer is success. 408, 429, 5xx, network errors,
// timeouts and ctx ending return retry true; any other status (other 4xx, and 3xx, since
// redirects are not followed) returns retry false, as does ErrInvalidReminder for a reminder
// without inquiry id or link. The error names the status or the network failure, never the
// link or the endpoint's URL. The response body is read up to 64 KiB and discarded.
func (c *WebhookChannel) Send(ctx context.Context, r *Reminder) (retry bool, err error) {
	if err := r.validate(); err != nil {
		return false, fmt.Errorf("send reminder by webhook: %w", err)
	}
	start := time.Now()
	retry, err = c.send(ctx, r)
	c.metrics.observe(start, retry, err)
	if err != nil {
		return retry, fmt.Errorf("send %s reminder for inquiry %s by webhook: %w", r.Stage, r.InquiryID, err)
	}
	c.log.DebugContext(ctx, "reminder sent", "inquiry_id", r.InquiryID, "stage", r.Stage.Name,
		"duration", time.Since(start))
	return false, nil
}

func (c *WebhookChannel) send(ctx context.Context, r *Reminder) (bool, error) {
	body, err := json.Marshal(c.body(r))
	if err != nil {
		return false, fmt.Errorf("encode body: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("build request: invalid url")
	}
	id := WebhookID(r.InquiryID, r.Stage.Name)
	ts := c.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "resumer")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", SignWebhook(c.key, id, ts, body))

	resp, err := c.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which may carry credentials: keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return true, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookResponse))

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return false, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return true, fmt.Errorf("post: endpoint answered %d", code)
	default:
		return false, fmt.Errorf("post: endpoint answered %d", code)
	}
}
