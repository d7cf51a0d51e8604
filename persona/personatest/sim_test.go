package personatest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// call sends one request to the simulator and decodes the JSON answer (nil when not JSON).
func call(t *testing.T, sim *personatest.Server, method, path, key string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, sim.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	json.Unmarshal(body, &doc)
	return resp, doc
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dig walks a decoded JSON document: dig(doc, "data", "attributes", "status").
func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func TestSimResumeAnswers(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	key := sim.APIKey()
	final := map[string]func(string) error{
		"completed":    sim.Complete,
		"failed":       sim.Fail,
		"needs_review": func(id string) error { must(t, sim.Complete(id)); return sim.MarkForReview(id) },
		"approved":     func(id string) error { must(t, sim.Complete(id)); return sim.Approve(id) },
		"declined":     func(id string) error { must(t, sim.Complete(id)); return sim.Decline(id) },
		"redacted":     sim.Redact,
	}
	// PERSONA.md §6: final statuses answer 409 with {"errors": [{"title", "details"}]}.
	for status, setup := range final {
		t.Run(status, func(t *testing.T) {
			inq := sim.CreateInquiry(personatest.InquiryParams{})
			must(t, setup(inq.ID))
			resp, doc := call(t, sim, "POST", "/api/v1/inquiries/"+inq.ID+"/resume", key, nil)
			if resp.StatusCode != http.StatusConflict {
				t.Fatalf("status %d, want 409", resp.StatusCode)
			}
			errs, _ := doc["errors"].([]any)
			if len(errs) != 1 || dig(errs[0], "title") == nil || dig(errs[0], "details") == nil {
				t.Errorf("error body %v", doc)
			}
		})
	}
	// §6: unknown id 404; §7: bearer key required, Request-Id and ratelimit-* on every answer.
	tests := []struct {
		name, path, key string
		want            int
	}{
		{"unknown", "/api/v1/inquiries/inq_unknown/resume", key, http.StatusNotFound},
		{"no key", "/api/v1/inquiries/inq_unknown/resume", "", http.StatusUnauthorized},
		{"wrong key", "/api/v1/inquiries/inq_unknown/resume", "persona_sandbox_other", http.StatusUnauthorized},
		{"no route", "/api/v1/nothing", key, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := call(t, sim, "POST", tt.path, tt.key, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			for _, h := range []string{"Request-Id", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
		})
	}
}

// claims decodes a JWT's claims without verification.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var c map[string]any
	must(t, json.Unmarshal(raw, &c))
	return c
}

func TestSimSessionLifecycle(t *testing.T) {
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	sim := personatest.NewServer(t, personatest.Options{AfterCreate: 2 * time.Hour, AfterStart: time.Hour, AfterResume: 3 * time.Hour,
		Now: func() time.Time { return base }})
	key := sim.APIKey()
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	path := "/api/v1/inquiries/" + inq.ID + "/resume"

	// §5: created inquiries expire after the "after create" interval.
	if got := inq.ExpiresAt.Sub(inq.CreatedAt); got != 2*time.Hour {
		t.Errorf("created expiry after %s, want 2h", got)
	}
	_, doc := call(t, sim, "POST", path, key, nil)
	tok, _ := dig(doc, "meta", "session-token").(string)
	// §6: the token is a JWT whose exp is the inquiry's expires-at.
	c := claims(t, tok)
	if exp, _ := c["exp"].(float64); int64(exp) != inq.ExpiresAt.Unix() || c["inquiry-id"] != inq.ID || c["inquiry-session-id"] == nil {
		t.Errorf("claims %v; want exp %d and the inquiry id", c, inq.ExpiresAt.Unix())
	}
	if !sim.ValidSession(inq.ID, tok) {
		t.Fatal("fresh token invalid")
	}
	if sim.ValidSession("inq_other", tok) || sim.ValidSession(inq.ID, tok+"x") {
		t.Error("token valid for another inquiry or with a bad signature")
	}

	// §5: starting sets expiry from the "after start" interval; §6 (inferred): the session
	// minted earlier keeps its own exp, and resume mints a new one under the new expiry.
	must(t, sim.Start(inq.ID))
	started, _ := sim.Inquiry(inq.ID)
	if got := started.ExpiresAt.Sub(started.StartedAt); got != time.Hour {
		t.Errorf("pending expiry after %s, want 1h", got)
	}
	_, doc = call(t, sim, "POST", path, key, nil)
	tok2, _ := dig(doc, "meta", "session-token").(string)
	if tok2 == tok {
		t.Error("session minted under the old expiry was reused")
	}

	// §5: expiry ends the inquiry's sessions.
	sim.Advance(time.Hour)
	if now, _ := sim.Inquiry(inq.ID); now.Status != persona.StatusExpired || now.ExpiredAt.IsZero() {
		t.Fatalf("status %s after its expiry, want expired", now.Status)
	}
	if sim.ValidSession(inq.ID, tok2) {
		t.Error("token valid after the inquiry expired")
	}
	// §6: an expired inquiry becomes pending again, with the "after resume" interval.
	resp, doc := call(t, sim, "POST", path, key, nil)
	if resp.StatusCode != 200 || dig(doc, "data", "attributes", "status") != "pending" {
		t.Fatalf("resume of expired: %d %v", resp.StatusCode, dig(doc, "data", "attributes", "status"))
	}
	resumed, _ := sim.Inquiry(inq.ID)
	if got := resumed.ExpiresAt.Sub(sim.Now()); got != 3*time.Hour {
		t.Errorf("resumed expiry in %s, want 3h", got)
	}
	tok3, _ := dig(doc, "meta", "session-token").(string)
	if !sim.ValidSession(inq.ID, tok3) || sim.ValidSession(inq.ID, tok2) {
		t.Error("after resume: new token must be valid, old one not")
	}
	// Completing ends every session.
	must(t, sim.Complete(inq.ID))
	if sim.ValidSession(inq.ID, tok3) {
		t.Error("token valid after completion")
	}
}

func TestSimSessionLimit(t *testing.T) {
	// §6: at most 25 sessions per inquiry; the simulator answers 422 beyond (documented
	// on its resume handler), reusing an unused session never counts.
	sim := personatest.NewServer(t, personatest.Options{})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	path := "/api/v1/inquiries/" + inq.ID + "/resume"
	for i := range 25 {
		_, doc := call(t, sim, "POST", path, sim.APIKey(), nil)
		tok, _ := dig(doc, "meta", "session-token").(string)
		_, again := call(t, sim, "POST", path, sim.APIKey(), nil)
		if dig(again, "meta", "session-token") != tok {
			t.Fatalf("session %d not reused while unused", i)
		}
		must(t, sim.UseSession(inq.ID, tok))
	}
	resp, _ := call(t, sim, "POST", path, sim.APIKey(), nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || sim.Sessions(inq.ID) != 25 {
		t.Errorf("26th session: status %d, %d sessions", resp.StatusCode, sim.Sessions(inq.ID))
	}
}

func TestSimOneTimeLink(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	_, doc := call(t, sim, "POST", "/api/v1/inquiries/"+inq.ID+"/generate-one-time-link", sim.APIKey(), nil)
	link, _ := dig(doc, "meta", "one-time-link").(string)
	if !strings.HasPrefix(link, sim.URL()+"/verify?code=") {
		t.Fatalf("link %q", link)
	}
	// §6: single use.
	for i, want := range []int{200, 403} {
		resp, err := http.Get(link)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("use %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	// §5, §6: expiry kills links, and an expired inquiry gets none (resume first).
	_, doc = call(t, sim, "POST", "/api/v1/inquiries/"+inq.ID+"/generate-one-time-link", sim.APIKey(), nil)
	link, _ = dig(doc, "meta", "one-time-link").(string)
	must(t, sim.Expire(inq.ID))
	if resp, err := http.Get(link); err != nil || resp.StatusCode != 403 {
		t.Errorf("link of an expired inquiry still opens")
	}
	resp, _ := call(t, sim, "POST", "/api/v1/inquiries/"+inq.ID+"/generate-one-time-link", sim.APIKey(), nil)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("one-time link of expired: %d, want 409", resp.StatusCode)
	}
}

func TestSimRateLimitFixedWindow(t *testing.T) {
	// §7: fixed window, ratelimit-* headers, 429 beyond the limit.
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	sim := personatest.NewServer(t, personatest.Options{RateLimit: 3, Now: func() time.Time { return base }})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	for i, want := range []int{200, 200, 200, 429, 429} {
		resp, doc := call(t, sim, "GET", "/api/v1/inquiries/"+inq.ID, sim.APIKey(), nil)
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if got, want := resp.Header.Get("Ratelimit-Remaining"), strconv.Itoa(max(2-i, 0)); got != want {
			t.Errorf("request %d: remaining %s, want %s", i+1, got, want)
		}
		if resp.Header.Get("Ratelimit-Limit") != "3" || resp.Header.Get("Ratelimit-Reset") != "60" {
			t.Errorf("limit %s reset %s", resp.Header.Get("Ratelimit-Limit"), resp.Header.Get("Ratelimit-Reset"))
		}
		if want == 429 && doc["errors"] == nil {
			t.Error("429 without a JSON:API error body")
		}
	}
	sim.Advance(time.Minute)
	if resp, _ := call(t, sim, "GET", "/api/v1/inquiries/"+inq.ID, sim.APIKey(), nil); resp.StatusCode != 200 {
		t.Errorf("next window: %d", resp.StatusCode)
	}
}

func TestSimIdempotencyKeyReplays(t *testing.T) {
	// §7: Idempotency-Key on a POST replays the first answer.
	sim := personatest.NewServer(t, personatest.Options{})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	path := "/api/v1/inquiries/" + inq.ID + "/resume"
	hdr := map[string]string{"Idempotency-Key": "k-1"}
	_, first := call(t, sim, "POST", path, sim.APIKey(), hdr)
	must(t, sim.UseSession(inq.ID, dig(first, "meta", "session-token").(string)))
	resp, again := call(t, sim, "POST", path, sim.APIKey(), hdr)
	if resp.Header.Get("Idempotent-Replayed") != "true" || dig(again, "meta", "session-token") != dig(first, "meta", "session-token") {
		t.Error("same key did not replay the first answer")
	}
	_, other := call(t, sim, "POST", path, sim.APIKey(), map[string]string{"Idempotency-Key": "k-2"})
	if dig(other, "meta", "session-token") == dig(first, "meta", "session-token") {
		t.Error("a new key replayed the old answer")
	}
	// Injected 5xx answers are not cached: a retry with the key is processed.
	sim.FailNext(1, 503)
	hdr3 := map[string]string{"Idempotency-Key": "k-3"}
	if resp, _ := call(t, sim, "POST", path, sim.APIKey(), hdr3); resp.StatusCode != 503 {
		t.Fatalf("fault not injected: %d", resp.StatusCode)
	}
	if resp, _ := call(t, sim, "POST", path, sim.APIKey(), hdr3); resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry after a 5xx: %d replayed=%q", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"))
	}
}

func TestSimListInquiries(t *testing.T) {
	// §7: filter[status] (comma list), filter[reference-id], filter[inquiry-template-id],
	// page[size], links.next with page[after].
	sim := personatest.NewServer(t, personatest.Options{})
	var pending []string
	for i := range 7 {
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "r" + strconv.Itoa(i%2), TemplateID: "itmpl_t"})
		if i%2 == 0 {
			must(t, sim.Start(inq.ID))
			pending = append([]string{inq.ID}, pending...) // newest first
		}
	}
	next := "/api/v1/inquiries?filter%5Bstatus%5D=pending,approved&filter%5Binquiry-template-id%5D=itmpl_t&page%5Bsize%5D=3"
	var got []string
	for next != "" {
		resp, doc := call(t, sim, "GET", next, sim.APIKey(), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", next, resp.StatusCode)
		}
		for _, d := range doc["data"].([]any) {
			got = append(got, dig(d, "id").(string))
		}
		next, _ = dig(doc, "links", "next").(string)
	}
	if strings.Join(got, ",") != strings.Join(pending, ",") {
		t.Errorf("listed %v, want %v", got, pending)
	}
	_, doc := call(t, sim, "GET", "/api/v1/inquiries?filter%5Breference-id%5D=r1", sim.APIKey(), nil)
	if n := len(doc["data"].([]any)); n != 3 {
		t.Errorf("reference r1: %d inquiries, want 3", n)
	}
	if resp, _ := call(t, sim, "GET", "/api/v1/inquiries?page%5Bsize%5D=101", sim.APIKey(), nil); resp.StatusCode != 400 {
		t.Errorf("page[size]=101: %d, want 400", resp.StatusCode)
	}
}

func TestSimKeyInflection(t *testing.T) {
	// §3, §7: Key-Inflection chooses the casing of every key.
	sim := personatest.NewServer(t, personatest.Options{})
	inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "u"})
	for inflection, key := range map[string]string{"": "reference-id", "kebab": "reference-id", "camel": "referenceId", "snake": "reference_id"} {
		_, doc := call(t, sim, "GET", "/api/v1/inquiries/"+inq.ID, sim.APIKey(), map[string]string{"Key-Inflection": inflection})
		if dig(doc, "data", "attributes", key) != "u" {
			t.Errorf("Key-Inflection %q: no %s in %v", inflection, key, dig(doc, "data", "attributes"))
		}
	}
}

func TestSimControlAPI(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	post := func(path, body string) (int, map[string]any) {
		resp, err := http.Post(sim.URL()+path, "application/json", strings.NewReader(body))
		must(t, err)
		defer resp.Body.Close()
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, doc
	}
	code, doc := post("/_sim/inquiries", `{"reference-id":"user-1","email-address":"jane@example.com"}`)
	id, _ := dig(doc, "data", "id").(string)
	if code != 201 || !strings.HasPrefix(id, "inq_") {
		t.Fatalf("create: %d %v", code, doc)
	}
	if code, doc = post("/_sim/inquiries/"+id+"/start", ""); code != 200 || dig(doc, "data", "attributes", "status") != "pending" {
		t.Errorf("start: %d %v", code, doc)
	}
	if code, _ = post("/_sim/inquiries/"+id+"/start", ""); code != 409 {
		t.Errorf("start twice: %d, want 409", code)
	}
	if code, _ = post("/_sim/inquiries/inq_none/complete", ""); code != 404 {
		t.Errorf("unknown inquiry: %d, want 404", code)
	}
	before := sim.Now()
	if code, _ = post("/_sim/clock/advance", `{"by":"25h"}`); code != 200 || sim.Now().Sub(before) < 25*time.Hour {
		t.Errorf("advance: %d", code)
	}
	if inq, _ := sim.Inquiry(id); inq.Status != persona.StatusExpired {
		t.Errorf("after advance: %s, want expired", inq.Status)
	}
	if code, _ = post("/_sim/faults", `{"fail-next":1,"status":502}`); code != 204 {
		t.Errorf("faults: %d", code)
	}
	if resp, _ := call(t, sim, "GET", "/api/v1/inquiries/"+id, sim.APIKey(), nil); resp.StatusCode != 502 {
		t.Errorf("injected fault: %d", resp.StatusCode)
	}
	// PERSONA.md §4: a case event listing its inquiries under relationships.inquiries.
	if code, doc = post("/_sim/events", `{"name":"case.created","inquiry-ids":["`+id+`"]}`); code != 201 {
		t.Errorf("object event: %d %v", code, doc)
	}
	all := sim.Events()
	if ev, err := persona.ParseEvent(all[len(all)-1].Body); err != nil || ev.Name != "case.created" || ev.AboutInquiry() ||
		len(ev.RelatedInquiryIDs) != 1 || ev.RelatedInquiryIDs[0] != id || doc["id"] != ev.ID {
		t.Errorf("object event parses as %+v (%v), answer %v", ev, err, doc)
	}
	if code, _ = post("/_sim/events", `{}`); code != 400 {
		t.Errorf("object event without a name: %d, want 400", code)
	}
	resp, err := http.Get(sim.URL() + "/_sim/")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Request-Id") == "" {
		t.Errorf("help: %d", resp.StatusCode)
	}
}

func TestSimServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	sim := personatest.New(personatest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/_sim/")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 || sim.URL() != "http://"+ln.Addr().String() {
		t.Errorf("status %d, URL %q", resp.StatusCode, sim.URL())
	}
	cancel()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
