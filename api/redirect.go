package api

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"net/http"

	"github.com/resumer/resumer/link"
)

// maxLinkTokenLen bounds the /r/ token verified: notify's tokens are a few dozen characters.
const maxLinkTokenLen = 512

//go:embed templates/page.html.tmpl
var templateFS embed.FS

// pageTemplate renders the pages /r/ answers with when it cannot redirect. html/template
// escapes every value; the pages carry nothing from the request.
var pageTemplate = template.Must(template.ParseFS(templateFS, "templates/page.html.tmpl"))

// page is one of the friendly pages of /r/: a status and the words for the user.
type page struct {
	name    string
	status  int
	Heading string
	Message string
	Hint    string
}

// The pages of /r/. Their words never name the inquiry or echo the link.
var (
	pageInvalidLink = page{name: "invalid_link", status: http.StatusBadRequest,
		Heading: "This link isn't valid",
		Message: "The link may have been cut short or changed when it was copied.",
		Hint:    "Please open the link again from the most recent message we sent you."}
	pageLinkExpired = page{name: "link_expired", status: http.StatusGone,
		Heading: "This link has expired",
		Message: "For your security, links to continue your verification only work for a limited time.",
		Hint:    "Please ask for a new link where you started your verification."}
	pageFinished = page{name: "finished", status: http.StatusGone,
		Heading: "There's nothing left to do here",
		Message: "This verification has already been finished, or it can no longer be continued with this link.",
		Hint:    "If you think this is a mistake, please contact the service that asked you to verify."}
	pageInquiryExpired = page{name: "inquiry_expired", status: http.StatusGone,
		Heading: "This verification has expired",
		Message: "The time to finish this verification has run out.",
		Hint:    "Please start again where you began your verification."}
	pageTooManyAttempts = page{name: "too_many_attempts", status: http.StatusTooManyRequests,
		Heading: "Too many attempts",
		Message: "This verification has been opened too often in a short time.",
		Hint:    "Please wait a while, then open the link again."}
	pageUnavailable = page{name: "unavailable", status: http.StatusServiceUnavailable,
		Heading: "We can't continue right now",
		Message: "The verification service isn't reachable at the moment.",
		Hint:    "Please try the link again in a few minutes."}
)

// serveRedirect serves RouteRedirect (the redirect link mode, DESIGN.md decision 7): verify
// the link's MAC and expiry, re-check the tracked state with the resume rules, mint a session
// token within the inquiry's mint limit, and answer 302 to the hosted flow. The Location
// carries the token, so the response also says Referrer-Policy: no-referrer, and neither the
// path (the link) nor the Location is logged. A HEAD request (link scanners) only verifies the
// link and never mints.
func (s *Server) serveRedirect(w http.ResponseWriter, r *http.Request, rq *request) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	token := r.PathValue("token")
	if len(token) > maxLinkTokenLen {
		s.writePage(w, rq, pageInvalidLink, nil)
		return
	}
	claims, err := s.signer.Verify(token, s.now())
	switch {
	case errors.Is(err, link.ErrExpired):
		rq.inquiryID = claims.InquiryID
		s.writePage(w, rq, pageLinkExpired, nil)
		return
	case err != nil:
		rq.err = err
		s.writePage(w, rq, pageInvalidLink, nil)
		return
	case !inquiryIDPattern.MatchString(claims.InquiryID):
		s.writePage(w, rq, pageInvalidLink, nil)
		return
	}
	rq.inquiryID = claims.InquiryID
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		return
	}
	inq, f := s.lookup(r, claims.InquiryID)
	switch {
	case f != nil && f.code == CodeNotFound:
		s.writePage(w, rq, pageFinished, f)
		return
	case f != nil:
		s.writePage(w, rq, pageUnavailable, f)
		return
	}
	if v := s.check(inq, s.now()); !v.resumable {
		p := pageInquiryExpired
		if v.reason == ReasonStatus {
			p = pageFinished
		}
		s.writePage(w, rq, p, v.failure())
		return
	}
	sess, f := s.mint(r.Context(), inq.ID)
	if f != nil {
		p := pageUnavailable
		switch f.code {
		case CodeRateLimited:
			p = pageTooManyAttempts
		case CodeNotFound, CodeInvalidInquiryState:
			p = pageFinished
		}
		s.writePage(w, rq, p, f)
		return
	}
	h := w.Header()
	h.Set("Location", link.HostedFlowURL(s.hostedFlowURL, inq.ID, sess.Token, s.redirectURI))
	w.WriteHeader(http.StatusFound)
}

// writePage answers p, with Retry-After when f asks for a wait, and records f (the failure
// behind the page, when there is one) for the log line.
func (s *Server) writePage(w http.ResponseWriter, rq *request, p page, f *failure) {
	rq.note = p.name
	h := w.Header()
	retry := upstreamRetryAfter
	if f != nil {
		rq.code = f.code
		if f.err != nil {
			rq.err = f.err
		}
		if f.retryAfter > 0 {
			retry = f.retryAfter
		}
	}
	if p.status == http.StatusTooManyRequests || p.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfterSeconds(retry))
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		// The pages are fixed, so this is a bug; answer the status with a plain text.
		s.logger.Error("render page", "page", p.name, "err", err.Error())
		http.Error(w, http.StatusText(p.status), p.status)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(p.status)
	w.Write(buf.Bytes())
}
