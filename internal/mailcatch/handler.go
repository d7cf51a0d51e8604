package mailcatch

import (
	"html/template"
	"net/http"
	"slices"
)

// pageTemplate lists the caught messages, newest first. Each HTML body is shown in a
// sandboxed iframe through srcdoc (html/template escapes it for the attribute), so a
// message's scripts never run and its styles stay inside the frame; the sandbox still lets
// links open in a new tab so a resume link can be followed.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Caught mail ({{len .}})</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#1d1d1f;background:#f5f5f7}
article{background:#fff;border-radius:8px;padding:16px;margin:0 0 24px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0 0 12px}
dt{font-weight:600}dd{margin:0;word-break:break-all}
iframe{width:100%;height:480px;border:1px solid #d2d2d7;border-radius:4px;background:#fff}
pre{white-space:pre-wrap;word-break:break-all;background:#f5f5f7;padding:12px;border-radius:4px}
</style>
</head>
<body>
<h1>Caught mail</h1>
{{if not .}}<p>No mail yet.</p>{{end}}
{{range $m := .}}<article>
<dl>
<dt>Received</dt><dd>{{.Received.Format "2006-01-02 15:04:05 MST"}}</dd>
<dt>From</dt><dd>{{.From}}</dd>
<dt>To</dt><dd>{{range $i, $t := .To}}{{if $i}}, {{end}}{{$t}}{{end}}</dd>
<dt>Subject</dt><dd>{{.Subject}}</dd>
<dt>Message-ID</dt><dd>{{.MessageID}}</dd>
{{with .ParseErr}}<dt>Parse error</dt><dd>{{.}}</dd>{{end}}
</dl>
{{with .HTMLBody}}<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" srcdoc="{{.}}"></iframe>{{end}}
{{if $m.TextBody}}<details{{if not $m.HTMLBody}} open{{end}}><summary>Text</summary><pre>{{$m.TextBody}}</pre></details>{{end}}
</article>
{{end}}
</body>
</html>
`))

// Handler returns an http.Handler that answers GET with an HTML page of the caught messages,
// newest first, for `resumer dev` at /dev/mail on the admin listener. It works under any
// path prefix. The page carries the messages' links and addresses: never expose it beyond a
// developer's machine.
func (c *Catcher) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		msgs := c.Messages()
		slices.Reverse(msgs)
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		// Inherited by the srcdoc frames: no script runs anywhere on the page.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-src 'self'")
		// A failure here is a write to a gone client: nothing left to report it to.
		_ = pageTemplate.Execute(w, msgs)
	})
}
