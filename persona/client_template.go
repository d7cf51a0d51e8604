package persona

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// OpGetTemplate is the operation name of CurrentTemplateVersion.
const (
	OpGetTemplate = "get_inquiry_template"
	templatesPath = "api/v1/inquiry-templates"
)

// CurrentTemplateVersion returns the id of the inquiry template's latest published version
// (GET /api/v1/inquiry-templates/{id}, its latest-published-version relationship; inferred
// from Persona's template API, PERSONA.md does not state the shape), "" when the template has
// none. Errors: ErrNotFound, ErrUnauthorized, and after retries ErrRateLimited or
// ErrUnavailable; ErrMalformedResponse when the answer is not a template.
func (c *Client) CurrentTemplateVersion(ctx context.Context, templateID string) (string, error) {
	if err := checkInquiryID(templateID); err != nil {
		return "", fmt.Errorf("get inquiry template %q: %w", templateID, err)
	}
	body, err := c.call(ctx, OpGetTemplate, http.MethodGet, c.endpoint(templatesPath, templateID))
	if err != nil {
		return "", fmt.Errorf("get inquiry template %s: %w", templateID, err)
	}
	root, err := parseObject(body)
	if err != nil {
		return "", fmt.Errorf("get inquiry template %s: %w", templateID, malformed(OpGetTemplate, err.Error()))
	}
	data, _ := root.object("data")
	if data == nil || data.str("id") == "" {
		return "", fmt.Errorf("get inquiry template %s: %w", templateID, malformed(OpGetTemplate, "no data.id"))
	}
	return relationshipID(data, "latest-published-version"), nil
}

// TemplateVersionSource is what TemplateVersions asks; *Client implements it.
type TemplateVersionSource interface {
	CurrentTemplateVersion(ctx context.Context, templateID string) (string, error)
}

// CurrentVersioner answers a template's current published version; *TemplateVersions is
// one.
type CurrentVersioner interface {
	Current(ctx context.Context, templateID string) (string, error)
}

// Superseded reports whether an inquiry of templateID pinned to version is on an older
// version than the template's current published one (RESUMER_RESUME_CURRENT_VERSION_ONLY).
// It is false with no error when src is nil, either id is empty, or src names no current
// version. An error is src's: the current version is unknown, and callers leave the
// inquiry to their other rules.
func Superseded(ctx context.Context, src CurrentVersioner, templateID, version string) (bool, error) {
	if src == nil || templateID == "" || version == "" {
		return false, nil
	}
	current, err := src.Current(ctx, templateID)
	if err != nil {
		return false, err
	}
	return current != "" && current != version, nil
}

// TemplateVersions caches each template's current published version for TTL, so that
// checking an inquiry's version costs a Persona call per template per TTL, not per inquiry.
// It is safe for concurrent use.
type TemplateVersions struct {
	Source TemplateVersionSource
	// TTL is how long an answer is kept; 10 minutes when zero.
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedVersion
}

type cachedVersion struct {
	version string
	until   time.Time
}

// Current returns the template's current published version, from the cache while fresh.
// The error is the source's; failures are not cached.
func (v *TemplateVersions) Current(ctx context.Context, templateID string) (string, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	ttl := v.TTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	v.mu.Lock()
	if c, ok := v.cache[templateID]; ok && now().Before(c.until) {
		v.mu.Unlock()
		return c.version, nil
	}
	v.mu.Unlock()
	version, err := v.Source.CurrentTemplateVersion(ctx, templateID)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	if v.cache == nil {
		v.cache = map[string]cachedVersion{}
	}
	v.cache[templateID] = cachedVersion{version: version, until: now().Add(ttl)}
	v.mu.Unlock()
	return version, nil
}
