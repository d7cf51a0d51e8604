package persona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Operation names of the reconciliation calls: the op label of the metrics and APIError.Op.
const (
	OpListEvents       = "list_events"
	OpInquiriesByID    = "list_inquiries_by_id"
	eventsPath         = "api/v1/events"
	maxInquiriesPerIDs = 100
)

// EventFilter selects events for ListEvents (PERSONA.md §7: the Events API lists the same
// objects webhooks deliver). Zero fields do not filter.
type EventFilter struct {
	// Names keeps events with any of these names (filter[name], comma-separated).
	Names []string
	// CreatedAtStart keeps events created at or after it (filter[created-at-start]).
	CreatedAtStart time.Time
	// CreatedAtEnd keeps events created at or before it (filter[created-at-end]).
	CreatedAtEnd time.Time
	// After starts the listing after this event id (page[after]), to resume a listing
	// that was interrupted.
	After string
	// PageSize is the number of events per request, at most 100; Persona's default when 0.
	PageSize int
}

// ListedEvent is one event of an Events API page: the event as ParseEvent reads it (Event is
// nil when it does not parse, for example an event about another kind of object, and Err
// says why) and Body, the event wrapped as a webhook body ({"data": <event>}), which the
// rest of the pipeline takes exactly like a delivered webhook.
type ListedEvent struct {
	Event *Event
	Err   error
	Body  []byte
	// ID is the event's id even when Event is nil ("" when it has none).
	ID string
	// Page is the number of the page (one API call) the event came on, from 1.
	Page int
}

// ListEvents iterates over the events matching f, newest first as Persona lists them,
// following links.next from page to page; each page is one API call with the usual
// retries. On a failure the sequence yields (nil, err) once and ends; err wraps an
// *APIError, or ErrMalformedResponse when a page or its next link cannot be used. Breaking
// out of the loop stops the requests. An event the client cannot parse is yielded with its
// Err set, not as a failure of the listing.
func (c *Client) ListEvents(ctx context.Context, f EventFilter) iter.Seq2[*ListedEvent, error] {
	return func(yield func(*ListedEvent, error) bool) {
		u := c.endpoint(eventsPath)
		q := url.Values{}
		if len(f.Names) > 0 {
			q.Set("filter[name]", strings.Join(f.Names, ","))
		}
		if !f.CreatedAtStart.IsZero() {
			q.Set("filter[created-at-start]", f.CreatedAtStart.UTC().Format(time.RFC3339Nano))
		}
		if !f.CreatedAtEnd.IsZero() {
			q.Set("filter[created-at-end]", f.CreatedAtEnd.UTC().Format(time.RFC3339Nano))
		}
		if f.After != "" {
			q.Set("page[after]", f.After)
		}
		if f.PageSize > 0 {
			q.Set("page[size]", strconv.Itoa(min(f.PageSize, maxListPageSize)))
		}
		u.RawQuery = q.Encode()
		err := c.paginate(ctx, OpListEvents, "list events", u, func(page int, body []byte) (string, bool, error) {
			var doc struct {
				Data  []json.RawMessage `json:"data"`
				Links struct {
					Next *string `json:"next"`
				} `json:"links"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				return "", false, errors.New("body is not an event page")
			}
			for _, raw := range doc.Data {
				le := listedEvent(raw)
				le.Page = page
				if !yield(le, nil) {
					return "", false, nil
				}
			}
			if doc.Links.Next == nil {
				return "", true, nil
			}
			return *doc.Links.Next, true, nil
		})
		if err != nil {
			yield(nil, err)
		}
	}
}

// listedEvent wraps one event object of a page as a webhook body and parses it.
func listedEvent(raw json.RawMessage) *ListedEvent {
	body := make([]byte, 0, len(raw)+9)
	body = append(body, `{"data":`...)
	body = append(body, raw...)
	body = append(body, '}')
	le := &ListedEvent{Body: body}
	le.Event, le.Err = ParseEvent(body)
	if le.Event != nil {
		le.ID = le.Event.ID
	} else if root, err := decodeObject(raw); err == nil && root != nil {
		le.ID = root.str("id")
	}
	return le
}

// InquiriesByID reads up to 100 inquiries in one call (GET /api/v1/inquiries with
// filter[inquiry-id], PERSONA.md §7). fields, when given, is the sparse fieldset
// (fields[inquiry]), so that no personal data travels; the inquiries come back with only those
// attributes. Ids Persona does not know are absent from the result, in which order is
// Persona's. Errors: more than 100 ids or an id that cannot be Persona's (without a
// request), ErrUnauthorized, ErrRejected, and after retries ErrRateLimited or ErrUnavailable.
func (c *Client) InquiriesByID(ctx context.Context, ids []string, fields ...string) ([]*Inquiry, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > maxInquiriesPerIDs {
		return nil, fmt.Errorf("list %d inquiries by id: at most %d per call", len(ids), maxInquiriesPerIDs)
	}
	for _, id := range ids {
		if err := checkInquiryID(id); err != nil {
			return nil, fmt.Errorf("list inquiries by id: %q: %w", id, err)
		}
	}
	u := c.endpoint(inquiriesPath)
	q := url.Values{}
	q.Set("filter[inquiry-id]", strings.Join(ids, ","))
	q.Set("page[size]", strconv.Itoa(maxInquiriesPerIDs))
	if len(fields) > 0 {
		q.Set("fields[inquiry]", strings.Join(fields, ","))
	}
	u.RawQuery = q.Encode()
	body, err := c.call(ctx, OpInquiriesByID, http.MethodGet, u)
	if err != nil {
		return nil, fmt.Errorf("list %d inquiries by id: %w", len(ids), err)
	}
	inquiries, _, err := decodeInquiryPage(body)
	if err != nil {
		return nil, fmt.Errorf("list %d inquiries by id: %w", len(ids), malformed(OpInquiriesByID, err.Error()))
	}
	return inquiries, nil
}
