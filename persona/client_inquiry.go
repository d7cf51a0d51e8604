package persona

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Operation names: the op label of the metrics and APIError.Op.
const (
	OpResume          = "resume"
	OpOneTimeLink     = "generate_one_time_link"
	OpGetInquiry      = "get_inquiry"
	OpListInquiries   = "list_inquiries"
	inquiriesPath     = "api/v1/inquiries"
	maxListPageSize   = 100
	redactedTokenText = "[redacted]"
)

// Session is a resumable session of an inquiry: the session token Persona minted (or reused)
// and when it stops working. The token grants access to the user's personal data
// (PERSONA.md §8): String, GoString and LogValue redact it, so printing or logging a Session
// is safe; only Token itself reveals it.
type Session struct {
	// Token is the session token (a JWT). Secret: hand it only to the inquiry's user.
	Token string
	// ExpiresAt is the token's exp claim, read without verification (PERSONA.md §6); the
	// inquiry's expires-at when the token carries none.
	ExpiresAt time.Time
	// Inquiry is the inquiry as the resume response returned it (now created or pending).
	Inquiry *Inquiry
}

// Until is when the user must have used the session, the time to tell them: the earlier of
// the token's exp (ExpiresAt) and the inquiry's expiry, which is the resume response's
// expires-at (a resumed expired inquiry has a new one, PERSONA.md §6), else tracked (the
// caller's record of it). Persona's own example token lives 24 hours from minting, not to
// the inquiry's expiry. Zero times are ignored; zero when all are.
func (s *Session) Until(tracked time.Time) time.Time {
	inquiry := tracked
	if s.Inquiry != nil && !s.Inquiry.ExpiresAt.IsZero() {
		inquiry = s.Inquiry.ExpiresAt
	}
	switch {
	case s.ExpiresAt.IsZero():
		return inquiry
	case inquiry.IsZero() || s.ExpiresAt.Before(inquiry):
		return s.ExpiresAt
	}
	return inquiry
}

// String describes the session without its token.
func (s Session) String() string {
	id := ""
	if s.Inquiry != nil {
		id = s.Inquiry.ID
	}
	return fmt.Sprintf("persona.Session{inquiry %s, expires %s, token %s}", id,
		s.ExpiresAt.UTC().Format(time.RFC3339), redactedTokenText)
}

// GoString is String, so %#v redacts too.
func (s Session) GoString() string { return s.String() }

// LogValue logs the inquiry id and expiry; the token is redacted.
func (s Session) LogValue() slog.Value {
	id := ""
	if s.Inquiry != nil {
		id = s.Inquiry.ID
	}
	return slog.GroupValue(
		slog.String("inquiry_id", id),
		slog.Time("expires_at", s.ExpiresAt),
		slog.String("token", redactedTokenText),
	)
}

// Resume asks Persona for a session token of the inquiry (POST /api/v1/inquiries/{id}/resume,
// PERSONA.md §6). Persona reuses a valid unused session when one exists, and turns an expired
// inquiry back into pending. Errors: ErrNotFound (unknown id), ErrNotResumable (the status
// is final), ErrRejected (e.g. the inquiry's session limit), ErrUnauthorized, and after
// retries ErrRateLimited or ErrUnavailable; ErrMalformedResponse when the answer holds no
// token.
func (c *Client) Resume(ctx context.Context, inquiryID string) (*Session, error) {
	if err := checkInquiryID(inquiryID); err != nil {
		return nil, fmt.Errorf("resume inquiry %q: %w", inquiryID, err)
	}
	body, err := c.call(ctx, OpResume, http.MethodPost, c.endpoint(inquiriesPath, inquiryID, "resume"))
	if err != nil {
		return nil, fmt.Errorf("resume inquiry %s: %w", inquiryID, err)
	}
	inq, meta, err := decodeInquiryDocument(body)
	if err != nil {
		return nil, fmt.Errorf("resume inquiry %s: %w", inquiryID, malformed(OpResume, err.Error()))
	}
	s := &Session{Token: meta.str("session-token"), Inquiry: inq}
	if s.Token == "" {
		return nil, fmt.Errorf("resume inquiry %s: %w", inquiryID, malformed(OpResume, "no meta.session-token"))
	}
	if s.ExpiresAt, err = SessionTokenExpiry(s.Token); err != nil {
		c.logger.WarnContext(ctx, "session token has no readable exp; using the inquiry's expires-at",
			"inquiry_id", inquiryID, "err", err.Error())
		s.ExpiresAt = inq.ExpiresAt
	}
	return s, nil
}

// GenerateOneTimeLink asks Persona for a single-use link to the inquiry
// (POST /api/v1/inquiries/{id}/generate-one-time-link, PERSONA.md §6). The link is a
// credential like a session token: do not log it. An expired inquiry answers ErrNotResumable
// (resume it first); other errors as for Resume.
func (c *Client) GenerateOneTimeLink(ctx context.Context, inquiryID string) (string, *Inquiry, error) {
	if err := checkInquiryID(inquiryID); err != nil {
		return "", nil, fmt.Errorf("generate one-time link for inquiry %q: %w", inquiryID, err)
	}
	body, err := c.call(ctx, OpOneTimeLink, http.MethodPost, c.endpoint(inquiriesPath, inquiryID, "generate-one-time-link"))
	if err != nil {
		return "", nil, fmt.Errorf("generate one-time link for inquiry %s: %w", inquiryID, err)
	}
	inq, meta, err := decodeInquiryDocument(body)
	if err != nil {
		return "", nil, fmt.Errorf("generate one-time link for inquiry %s: %w", inquiryID, malformed(OpOneTimeLink, err.Error()))
	}
	link := meta.str("one-time-link")
	if link == "" {
		return "", nil, fmt.Errorf("generate one-time link for inquiry %s: %w", inquiryID, malformed(OpOneTimeLink, "no meta.one-time-link"))
	}
	return link, inq, nil
}

// GetInquiry reads one inquiry (GET /api/v1/inquiries/{id}). Errors: ErrNotFound,
// ErrUnauthorized, and after retries ErrRateLimited or ErrUnavailable.
func (c *Client) GetInquiry(ctx context.Context, inquiryID string) (*Inquiry, error) {
	if err := checkInquiryID(inquiryID); err != nil {
		return nil, fmt.Errorf("get inquiry %q: %w", inquiryID, err)
	}
	body, err := c.call(ctx, OpGetInquiry, http.MethodGet, c.endpoint(inquiriesPath, inquiryID))
	if err != nil {
		return nil, fmt.Errorf("get inquiry %s: %w", inquiryID, err)
	}
	inq, _, err := decodeInquiryDocument(body)
	if err != nil {
		return nil, fmt.Errorf("get inquiry %s: %w", inquiryID, malformed(OpGetInquiry, err.Error()))
	}
	return inq, nil
}

// InquiryFilter selects inquiries for ListInquiries (PERSONA.md §7). Zero fields do not
// filter.
type InquiryFilter struct {
	// Statuses keeps inquiries in any of these statuses (filter[status]).
	Statuses []Status
	// ReferenceID keeps inquiries of this reference id (filter[reference-id]).
	ReferenceID string
	// TemplateID keeps inquiries of this template (filter[inquiry-template-id]).
	TemplateID string
	// PageSize is the number of inquiries per request, at most 100; Persona's default when 0.
	PageSize int
}

// ListInquiries iterates over the inquiries matching f, following links.next from page to
// page; each page is one API call with the usual retries. On a failure the sequence yields
// (nil, err) once and ends; err wraps an *APIError, or ErrMalformedResponse when a page or its
// next link cannot be used. Breaking out of the loop stops the requests.
func (c *Client) ListInquiries(ctx context.Context, f InquiryFilter) iter.Seq2[*Inquiry, error] {
	return func(yield func(*Inquiry, error) bool) {
		u := c.endpoint(inquiriesPath)
		q := url.Values{}
		if len(f.Statuses) > 0 {
			s := make([]string, len(f.Statuses))
			for i, st := range f.Statuses {
				s[i] = string(st)
			}
			q.Set("filter[status]", strings.Join(s, ","))
		}
		if f.ReferenceID != "" {
			q.Set("filter[reference-id]", f.ReferenceID)
		}
		if f.TemplateID != "" {
			q.Set("filter[inquiry-template-id]", f.TemplateID)
		}
		if f.PageSize > 0 {
			q.Set("page[size]", strconv.Itoa(min(f.PageSize, maxListPageSize)))
		}
		u.RawQuery = q.Encode()
		err := c.paginate(ctx, OpListInquiries, "list inquiries", u, func(_ int, body []byte) (string, bool, error) {
			inquiries, next, err := decodeInquiryPage(body)
			if err != nil {
				return "", false, err
			}
			for _, inq := range inquiries {
				if !yield(inq, nil) {
					return "", false, nil
				}
			}
			return next, true, nil
		})
		if err != nil {
			yield(nil, err)
		}
	}
}

// paginate calls u and then each page its links.next names (one API call each, with the
// usual retries), handing every body to page with its number from 1; page returns the
// page's links.next, whether to go on, and an error when the body cannot be used. A failed
// call is returned as it is; a page page cannot use, a next link nextPage refuses and a next
// link that repeats a page are ErrMalformedResponse. Every error says what and which page.
func (c *Client) paginate(ctx context.Context, op, what string, u *url.URL, page func(n int, body []byte) (next string, more bool, err error)) error {
	seen := map[string]bool{}
	for n := 1; u != nil; n++ {
		seen[u.String()] = true
		body, err := c.call(ctx, op, http.MethodGet, u)
		if err != nil {
			return fmt.Errorf("%s (page %d): %w", what, n, err)
		}
		next, more, err := page(n, body)
		if err != nil {
			return fmt.Errorf("%s (page %d): %w", what, n, malformed(op, err.Error()))
		}
		if !more {
			return nil
		}
		if u, err = c.nextPage(u, next); err != nil {
			return fmt.Errorf("%s (page %d): %w", what, n, malformed(op, err.Error()))
		}
		if u != nil && seen[u.String()] {
			return fmt.Errorf("%s (page %d): %w", what, n, malformed(op, "links.next repeats a page"))
		}
	}
	return nil
}

// nextPage resolves links.next (usually a path with a query) against the current page. It
// refuses a link to another host: the API key must never be sent elsewhere.
func (c *Client) nextPage(cur *url.URL, next string) (*url.URL, error) {
	if next == "" {
		return nil, nil
	}
	ref, err := url.Parse(next)
	if err != nil {
		return nil, fmt.Errorf("parse links.next: %v", err)
	}
	u := cur.ResolveReference(ref)
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return nil, fmt.Errorf("links.next points at another host %q", u.Host)
	}
	return u, nil
}

// checkInquiryID rejects ids that cannot be Persona's (inq_ followed by letters and digits)
// without a request: such an inquiry cannot exist, so the error wraps ErrNotFound.
func checkInquiryID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("invalid inquiry id: %w", ErrNotFound)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("invalid inquiry id: %w", ErrNotFound)
		}
	}
	return nil
}

// malformed is the error of a 2xx response the client cannot use.
func malformed(op, detail string) *APIError {
	return &APIError{Op: op, Status: http.StatusOK, Title: "unusable response", Detail: detail}
}

// decodeInquiryDocument reads {"data": <inquiry>, "meta": {...}}; meta is empty, never nil.
func decodeInquiryDocument(body []byte) (*Inquiry, object, error) {
	root, err := parseObject(body)
	if err != nil {
		return nil, nil, err
	}
	data, err := root.object("data")
	if err != nil || data == nil {
		return nil, nil, fmt.Errorf("no data object")
	}
	inq := decodeInquiry(data)
	if inq.ID == "" {
		return nil, nil, fmt.Errorf("no data.id")
	}
	meta, _ := root.object("meta")
	if meta == nil {
		meta = object{}
	}
	return inq, meta, nil
}

// decodeInquiryPage reads {"data": [<inquiry>...], "links": {"next": ...}}.
func decodeInquiryPage(body []byte) ([]*Inquiry, string, error) {
	root, err := parseObject(body)
	if err != nil {
		return nil, "", err
	}
	data, err := root.objects("data")
	if err != nil {
		return nil, "", fmt.Errorf("data is not an array of objects")
	}
	out := make([]*Inquiry, 0, len(data))
	for _, d := range data {
		if inq := decodeInquiry(d); inq.ID != "" {
			out = append(out, inq)
		}
	}
	links, _ := root.object("links")
	return out, links.str("next"), nil
}

// parseObject decodes a JSON object body.
func parseObject(body []byte) (object, error) {
	root, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("body is not a JSON object")
	}
	if root == nil {
		return nil, fmt.Errorf("body is null")
	}
	return root, nil
}
