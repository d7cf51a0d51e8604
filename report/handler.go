package report

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Handler serves the report page of the admin listener: GET with ?since= (as ParsePeriod)
// and ?by= (a dimension), as HTML with SVG charts, or as JSON with ?format=json. Bad
// parameters are answered 400 and a failing source 503, as plain text; errors are logged to
// logger (nil: discarded). now is the clock (time.Now when nil).
func Handler(src Source, now func() time.Time, logger *slog.Logger) http.Handler {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		t := now()
		w.Header().Set("Cache-Control", "no-store")
		from, to, err := ParsePeriod(q.Get("since"), t)
		var rep *Report
		if err == nil {
			rep, err = Build(r.Context(), src, Options{From: from, To: to, By: q.Get("by")}, t)
		}
		switch {
		case errors.Is(err, ErrBadRequest):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			logger.Warn("report page", "err", err.Error())
			http.Error(w, "the funnel counts could not be read; try again", http.StatusServiceUnavailable)
			return
		}
		var buf bytes.Buffer
		if q.Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			err = rep.WriteJSON(&buf)
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
			err = rep.WriteHTML(&buf)
		}
		if err != nil {
			logger.Error("render report", "err", err.Error())
			http.Error(w, "the report could not be rendered", http.StatusInternalServerError)
			return
		}
		w.Write(buf.Bytes())
	})
}
