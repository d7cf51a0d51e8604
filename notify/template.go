package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"regexp"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed templates/*.tmpl
var embeddedTemplates embed.FS

// The template files of a reminder e-mail. For each part, a file named with the stage before
// the extension ("subject.1h.txt.tmpl", "reminder.6h.html.tmpl") takes precedence over the
// part's general file for reminders of that stage.
const (
	subjectTemplate = "subject.txt.tmpl"
	textTemplate    = "reminder.txt.tmpl"
	htmlTemplate    = "reminder.html.tmpl"
)

// TemplateData is what the e-mail templates see. The subject template runs first; the body
// templates also see its result in Subject.
type TemplateData struct {
	// NameFirst is the user's first name, or empty.
	NameFirst string
	// TimeLeft is the time until expiry in words, as TimeLeftInWords says it.
	TimeLeft string
	// Link resumes the inquiry. html/template escapes it for the attribute or text it lands
	// in; text templates print it as it is.
	Link string
	// Stage is the stage's name ("6h").
	Stage string
	// ExpiresAt is the inquiry's expiry, in UTC.
	ExpiresAt time.Time
	// InquiryID and ReferenceID identify the inquiry (ReferenceID may be empty).
	InquiryID   string
	ReferenceID string
	// Subject is the rendered subject (empty while the subject template runs).
	Subject string
}

// templateSet holds every parsed template file by file name.
type templateSet struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// renderedMessage is a reminder e-mail's rendered parts.
type renderedMessage struct {
	Subject, Text, HTML string
}

// loadTemplates parses the embedded templates and then every *.tmpl file in dir (when not
// empty), which replaces the embedded file of the same name or adds a stage-specific one.
// Files ending in .html.tmpl are parsed with html/template, the others with text/template.
func loadTemplates(dir string) (*templateSet, error) {
	set := &templateSet{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	sub, err := fs.Sub(embeddedTemplates, "templates")
	if err != nil {
		return nil, fmt.Errorf("load embedded templates: %w", err)
	}
	if err := set.parseDir(sub); err != nil {
		return nil, fmt.Errorf("load embedded templates: %w", err)
	}
	if dir == "" {
		return set, nil
	}
	// fs.Glob ignores a missing directory; a typo in the setting must not go unnoticed.
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("load templates: %s is not a directory", dir)
	}
	if err := set.parseDir(os.DirFS(dir)); err != nil {
		return nil, fmt.Errorf("load templates from %s: %w", dir, err)
	}
	return set, nil
}

// parseDir parses every *.tmpl file of fsys into set, replacing files of the same name.
func (set *templateSet) parseDir(fsys fs.FS) error {
	names, err := fs.Glob(fsys, "*.tmpl")
	if err != nil {
		return err
	}
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, ".html.tmpl") {
			t, err := htmltemplate.New(name).Option("missingkey=error").Parse(string(src))
			if err != nil {
				return fmt.Errorf("parse %s: %w", name, err)
			}
			set.html[name] = t
			continue
		}
		t, err := texttemplate.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		set.text[name] = t
	}
	return nil
}

// stageNameRE is what a stage name must look like to select a template file: a reminder
// stage ("6h") or the win-back (WinbackStage).
var stageNameRE = regexp.MustCompile(`^[0-9]+[hms]$|^` + WinbackStage + `$`)

// pick returns the template to use for part (a general file name such as
// "subject.txt.tmpl") at stage: the stage-specific file's when there is one.
func pick[T any](files map[string]T, part, stage string) (T, bool) {
	if stageNameRE.MatchString(stage) {
		base, ext, _ := strings.Cut(part, ".")
		if t, ok := files[base+"."+stage+"."+ext]; ok {
			return t, true
		}
	}
	t, ok := files[part]
	return t, ok
}

// render renders the subject, text and HTML of a reminder e-mail. The subject's line breaks
// become spaces and surrounding space is trimmed, so a template cannot inject headers.
// Errors name the template and never carry the data.
func (set *templateSet) render(d TemplateData) (renderedMessage, error) {
	var out renderedMessage
	var buf bytes.Buffer
	subject, ok := pick(set.text, subjectTemplate, d.Stage)
	if !ok {
		return out, fmt.Errorf("render subject: no template %s", subjectTemplate)
	}
	if err := subject.Execute(&buf, d); err != nil {
		return out, fmt.Errorf("render subject: %w", err)
	}
	out.Subject = strings.Join(strings.Fields(buf.String()), " ")
	d.Subject = out.Subject

	text, ok := pick(set.text, textTemplate, d.Stage)
	if !ok {
		return out, fmt.Errorf("render text body: no template %s", textTemplate)
	}
	buf.Reset()
	if err := text.Execute(&buf, d); err != nil {
		return out, fmt.Errorf("render text body: %w", err)
	}
	out.Text = buf.String()

	html, ok := pick(set.html, htmlTemplate, d.Stage)
	if !ok {
		return out, fmt.Errorf("render html body: no template %s", htmlTemplate)
	}
	buf.Reset()
	if err := html.Execute(&buf, d); err != nil {
		return out, fmt.Errorf("render html body: %w", err)
	}
	out.HTML = buf.String()
	return out, nil
}

// templateData builds the data the templates see for r, with now as the clock when r.Now
// is zero.
func templateData(r *Reminder, now time.Time) TemplateData {
	return TemplateData{
		NameFirst:   strings.TrimSpace(r.NameFirst),
		TimeLeft:    TimeLeftInWords(r.TimeLeft(now)),
		Link:        r.Link,
		Stage:       r.Stage.Name,
		ExpiresAt:   r.ExpiresAt.UTC(),
		InquiryID:   r.InquiryID,
		ReferenceID: r.ReferenceID,
	}
}
