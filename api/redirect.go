package api

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/state"
)

// maxLinkTokenLen bounds the /r/ token verified: notify's tokens are a few dozen characters.
const maxLinkTokenLen = 512

//go:embed templates/page.html.tmpl
var templateFS embed.FS

// pageTemplate renders the pages /r/ answers with when it cannot redirect. html/template
// escapes every value; the pages carry nothing from the request.
var pageTemplate = template.Must(template.ParseFS(templateFS, "templates/page.html.tmpl"))

// page is one of the pages of /r/: a status and the words for the user.
type page struct {
	name    string
	status  int
	Heading string
	Message string
	Hint    string
}

// pageView is what the page template sees: the page, the brand, and for the continue page the
// form.
type pageView struct {
	// Locale is the page's language; Words its fixed words in it (button, links).
	Locale string
	Words  pageWords
	page
	Brand *brand.Brand
	// Color is the brand's primary colour (validated #rrggbb).
	Color string
	// FormToken, when set, shows the "Continue verification" form.
	FormToken string
	// FreshLinkURL, when set, offers a fresh e-mail (the brand's fresh_link_url).
	FreshLinkURL string
	// FallbackURL, when set, is the static link that starts a new inquiry
	// (link.FallbackURL), offered when the inquiry cannot be resumed and its template opts in.
	FallbackURL string
}

// The pages of /r/. Their words never name the inquiry or echo the link.
var (
	pageContinue = page{name: "continue", status: http.StatusOK,
		Heading: "Continue your verification",
		Message: "You asked to pick up your identity verification where you left off.",
		Hint:    "The button opens the secure verification page. If you did not ask for this, you can close this page."}
	pageFormExpired = page{name: "form_expired", status: http.StatusForbidden,
		Heading: "Please press the button again",
		Message: "This page was open for a while, so for your security we need you to confirm once more.",
		Hint:    "The button opens the secure verification page."}
	pageLinkUsed = page{name: "link_used", status: http.StatusGone,
		Heading: "This link has already been used",
		Message: "For your security, each link we e-mail opens your verification only once.",
		Hint:    "If you still need to finish, our next reminder (if one is due) brings a fresh link, or ask for a fresh e-mail where you started your verification."}
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

// continueButton is the label of the button that mints.
const continueButton = "Continue verification"

// formTokenTTL is how long the continue page's form token is accepted (capped at the link's
// own expiry).
const formTokenTTL = 30 * time.Minute

// maxFormBytes caps the body of POST /r/{token}: one hidden field.
const maxFormBytes = 1 << 10

// linkTarget is a verified /r/ link whose inquiry may be resumed now.
type linkTarget struct {
	token  string
	claims link.Claims
	inq    *state.Inquiry
	brand  *brand.Brand
}

// openLink runs the checks GET and POST /r/{token} share, without calling Persona: the
// link's MAC and expiry, the tracked inquiry and the resume rules. When it returns false it
// has answered with a page.
func (s *Server) openLink(w http.ResponseWriter, r *http.Request, rq *request) (linkTarget, bool) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Robots-Tag", "noindex, nofollow")
	t := linkTarget{token: r.PathValue("token"), brand: s.brands.For("", "")}
	if len(t.token) > maxLinkTokenLen {
		s.writePage(w, rq, pageView{page: pageInvalidLink, Brand: t.brand}, nil)
		return t, false
	}
	claims, err := s.signer.Verify(t.token, s.now())
	switch {
	case errors.Is(err, link.ErrExpired):
		rq.inquiryID = claims.InquiryID
		s.writePage(w, rq, pageView{page: pageLinkExpired, Brand: t.brand}, nil)
		return t, false
	case err != nil:
		rq.err = err
		s.writePage(w, rq, pageView{page: pageInvalidLink, Brand: t.brand}, nil)
		return t, false
	case !inquiryIDPattern.MatchString(claims.InquiryID):
		s.writePage(w, rq, pageView{page: pageInvalidLink, Brand: t.brand}, nil)
		return t, false
	}
	t.claims = claims
	rq.inquiryID = claims.InquiryID
	inq, f := s.lookup(r, claims.InquiryID)
	switch {
	case f != nil && f.code == CodeNotFound:
		s.writePage(w, rq, pageView{page: pageFinished, Brand: t.brand}, f)
		return t, false
	case f != nil:
		s.writePage(w, rq, pageView{page: pageUnavailable, Brand: t.brand}, f)
		return t, false
	}
	t.inq = inq
	t.brand = s.brands.For(inq.TemplateID, inq.ReferenceID)
	rq.locale = pageLocale(inq.Locale, t.brand)
	if v := s.judge(r.Context(), inq); !v.resumable {
		p := pageInquiryExpired
		if v.reason == ReasonStatus {
			p = pageFinished
		}
		s.writePage(w, rq, pageView{page: p, Brand: t.brand, FreshLinkURL: freshLink(p, t.brand), FallbackURL: v.fallbackURL}, v.failure())
		return t, false
	}
	return t, true
}

// freshLink is the brand's fresh-link URL on the pages where a fresh e-mail helps.
func freshLink(p page, b *brand.Brand) string {
	if p.name == pageLinkUsed.name || p.name == pageInquiryExpired.name || p.name == pageLinkExpired.name {
		return b.FreshLinkURL
	}
	return ""
}

// serveLinkPage serves RouteLinkPage, GET (and HEAD) /r/{token}: the continue page of a good
// link, with a "Continue verification" button, or the page saying why not. It never calls
// Persona, so the link scanners of mail systems (which fetch every link with GET or HEAD)
// burn nothing: no session, no mint allowance. Only the button (serveLinkContinue) mints.
func (s *Server) serveLinkPage(w http.ResponseWriter, r *http.Request, rq *request) {
	t, ok := s.openLink(w, r, rq)
	if !ok {
		return
	}
	if s.singleUse {
		used, err := s.store.LinkUsed(r.Context(), t.claims.InquiryID, link.ID(t.token))
		if err != nil {
			s.writePage(w, rq, pageView{page: pageUnavailable, Brand: t.brand}, storeFailure(err))
			return
		}
		if used {
			s.writePage(w, rq, pageView{page: pageLinkUsed, Brand: t.brand, FreshLinkURL: t.brand.FreshLinkURL}, nil)
			return
		}
	}
	s.writePage(w, rq, s.continueView(pageContinue, t), nil)
	if r.Method == http.MethodGet {
		s.markLink(r, t.inq.ID, state.LinkOpened)
	}
}

// markLink counts the use of a reminder's link in the recovery funnel; a failure is logged
// and costs the user nothing.
func (s *Server) markLink(r *http.Request, inquiryID, step string) {
	if _, err := s.store.MarkLink(context.WithoutCancel(r.Context()), inquiryID, step); err != nil {
		s.logger.Warn("count reminder link use", "inquiry_id", inquiryID, "step", step, "err", err.Error())
	}
}

// continueView is p (the continue page or one that asks to press again) with a fresh form.
func (s *Server) continueView(p page, t linkTarget) pageView {
	exp := s.now().Add(formTokenTTL)
	if t.claims.ExpiresAt.Before(exp) {
		exp = t.claims.ExpiresAt
	}
	return pageView{page: p, Brand: t.brand, FormToken: s.signer.FormToken(t.token, exp)}
}

// serveLinkContinue serves RouteLinkContinue, POST /r/{token}: the "Continue verification"
// button. It refuses a cross-origin request (http.CrossOriginProtection) and a missing,
// forged or stale form token (the token only the continue page of this very link carries),
// re-checks the link and the inquiry, marks a single-use link used, mints a session token
// within the inquiry's mint limit and answers 303 to the hosted flow. The Location carries
// the token, so neither the path (the link) nor the Location is logged.
func (s *Server) serveLinkContinue(w http.ResponseWriter, r *http.Request, rq *request) {
	t, ok := s.openLink(w, r, rq)
	if !ok {
		return
	}
	if err := s.crossOrigin.Check(r); err != nil {
		rq.err = err
		s.writePage(w, rq, s.continueView(pageFormExpired, t), nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	formErr := r.ParseForm()
	if formErr == nil {
		formErr = s.signer.VerifyForm(t.token, r.PostForm.Get("form_token"), s.now())
	}
	if formErr != nil {
		rq.err = formErr
		s.writePage(w, rq, s.continueView(pageFormExpired, t), nil)
		return
	}
	linkID := link.ID(t.token)
	if s.singleUse {
		first, err := s.store.UseLink(r.Context(), t.inq.ID, linkID, t.claims.ExpiresAt)
		if err != nil {
			s.writePage(w, rq, pageView{page: pageUnavailable, Brand: t.brand}, storeFailure(err))
			return
		}
		if !first {
			s.writePage(w, rq, pageView{page: pageLinkUsed, Brand: t.brand, FreshLinkURL: t.brand.FreshLinkURL}, nil)
			return
		}
	}
	sess, f := s.mint(r.Context(), t.inq)
	if f != nil {
		if s.singleUse {
			// Nothing reached the user: the link stays usable. A failed release leaves it
			// used, which errs on the safe side.
			if err := s.store.ReleaseLink(context.WithoutCancel(r.Context()), t.inq.ID, linkID); err != nil {
				s.logger.Warn("release single-use link", "inquiry_id", t.inq.ID, "err", err.Error())
			}
		}
		p := pageUnavailable
		switch f.code {
		case CodeRateLimited:
			p = pageTooManyAttempts
		case CodeNotFound, CodeInvalidInquiryState:
			p = pageFinished
		}
		s.writePage(w, rq, pageView{page: p, Brand: t.brand}, f)
		return
	}
	s.markLink(r, t.inq.ID, state.LinkPressed)
	w.Header().Set("Location", link.HostedFlowURL(s.hostedFlowURL, t.inq.ID, sess.Token, s.redirectURI))
	w.WriteHeader(http.StatusSeeOther)
}

// storeFailure is the failure of a Redis error on a /r/ page.
func storeFailure(err error) *failure {
	return &failure{status: http.StatusServiceUnavailable, code: CodeServiceUnavailable,
		detail: "The service is temporarily unavailable.", retryAfter: storeRetryAfter, err: err}
}

// writePage answers p, with Retry-After when f asks for a wait, and records f (the failure
// behind the page, when there is one) for the log line.
func (s *Server) writePage(w http.ResponseWriter, rq *request, v pageView, f *failure) {
	p := v.page
	rq.note = p.name
	if v.Brand == nil {
		v.Brand = brand.Neutral
	}
	v.Color = v.Brand.PrimaryColor()
	v.Locale = rq.locale
	if v.Locale == "" {
		v.Locale = pageLocale("", v.Brand)
	}
	v.page = localize(p, v.Locale)
	v.Words = wordsByLocale[v.Locale]
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
	if err := pageTemplate.Execute(&buf, v); err != nil {
		// The pages are fixed, so this is a bug; answer the status with a plain text.
		s.logger.Error("render page", "page", p.name, "err", err.Error())
		http.Error(w, http.StatusText(p.status), p.status)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.pageCSP)
	w.WriteHeader(p.status)
	w.Write(buf.Bytes())
}
