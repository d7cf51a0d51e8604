package api

import (
	"errors"
	"net/http"

	"github.com/resumer/resumer/report"
)

// RouteReport is the recovery funnel and measured uplift of a period (scope reports:read).
const RouteReport = "GET /v1/report"

// serveReport serves RouteReport: ?since= (7d, 36h, or a day 2026-01-02; 7d when absent)
// and ?by= (stage, channel, link-mode or brand; stage when absent), answered with the JSON
// of report.Report, the same as `resumer report --json`. The report covers every inquiry of
// the deployment, so a key limited by a reference prefix is refused (403).
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, rq *request) {
	key, f := s.authorize(w, r, rq, ScopeReportsRead)
	if f != nil {
		rq.problem(w, f)
		return
	}
	if key.ReferencePrefix != "" {
		rq.problem(w, fail(http.StatusForbidden, CodeForbidden,
			"The report covers every inquiry; a key limited to a reference prefix cannot read it."))
		return
	}
	if f := s.limitKey(r, key); f != nil {
		rq.problem(w, f)
		return
	}
	q := r.URL.Query()
	now := s.now()
	from, to, err := report.ParsePeriod(q.Get("since"), now)
	if err == nil {
		var rep *report.Report
		rep, err = report.Build(r.Context(), s.store, report.Options{From: from, To: to, By: q.Get("by")}, now)
		if err == nil {
			writeJSON(w, http.StatusOK, rep)
			return
		}
	}
	if errors.Is(err, report.ErrBadRequest) {
		rq.problem(w, fail(http.StatusBadRequest, CodeInvalidRequest,
			"since must be a duration like 7d or 36h or a day like 2026-01-02, and by one of stage, channel, link-mode, brand."))
		return
	}
	rq.problem(w, storeFailure(err))
}
