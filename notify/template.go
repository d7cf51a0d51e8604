package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/resumer/resumer/brand"
)

//go:embed templates
var embeddedTemplates embed.FS

// The template files of a reminder e-mail. For each part, a file named with the stage before
// the extension ("subject.1h.txt.tmpl", "reminder.6h.html.tmpl") takes precedence over the
// part's general file for reminders of that stage. Every .html.tmpl file is parsed together
// with layoutTemplate, so it may fill the layout's blocks (greeting, body, button, fallback,
// personal, support) and call {{template "layout" .}}, or be a whole document of its own.
const (
	subjectTemplate = "subject.txt.tmpl"
	textTemplate    = "reminder.txt.tmpl"
	htmlTemplate    = "reminder.html.tmpl"
	layoutTemplate  = "layout.html.tmpl"
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
	// Brand is who the reminder speaks for (see package brand): empty strings for a
	// deployment without brands, but Color is always a usable #rrggbb.
	Brand BrandData
	// Locale is the locale of the templates in use ("en", "es", "de").
	Locale string
}

// BrandData is the brand as the templates see it.
type BrandData struct {
	Name, LogoURL, Color, SupportEmail, SupportURL, Footer string
}

// brandData is b for the templates.
func brandData(b *brand.Brand) BrandData {
	return BrandData{Name: b.Name, LogoURL: b.LogoURL, Color: b.PrimaryColor(), SupportEmail: b.SupportEmail,
		SupportURL: b.SupportURL, Footer: b.Footer}
}

// templateSet holds every parsed template file of one brand and locale by file name.
type templateSet struct {
	// layout is the source of layoutTemplate that .html.tmpl files are parsed with.
	layout string
	// htmlSrc are the .html.tmpl sources until finish parses them with the layout.
	htmlSrc map[string]string
	text    map[string]*texttemplate.Template
	html    map[string]*htmltemplate.Template
}

// renderedMessage is a reminder e-mail's rendered parts.
type renderedMessage struct {
	Subject, Text, HTML string
}

// catalog holds the parsed template sets by brand id and locale.
type catalog struct {
	sets map[string]map[string]*templateSet
}

// get returns the set of brand id in locale; the neutral brand's when the brand has none.
func (c *catalog) get(brandID, locale string) *templateSet {
	if byLocale, ok := c.sets[brandID]; ok {
		return byLocale[locale]
	}
	return c.sets[brand.Neutral.ID][locale]
}

// loadCatalog parses the template sets of every brand (and the neutral brand) in every
// locale. A set is built in layers, each replacing files of the same name: the embedded
// templates/en/ (so a file a locale lacks is sent in English), templates/<locale>/, then the
// top of dir and dir/<locale>/, then the top of the brand's TemplatesDir and its <locale>/
// subdirectory. Errors name the directory and the file.
func loadCatalog(dir string, brands []brand.Brand) (*catalog, error) {
	embedded, err := fs.Sub(embeddedTemplates, "templates")
	if err != nil {
		return nil, fmt.Errorf("load embedded templates: %w", err)
	}
	layout, err := fs.ReadFile(embedded, layoutTemplate)
	if err != nil {
		return nil, fmt.Errorf("load embedded templates: %w", err)
	}
	var global []layer
	if dir != "" {
		if err := checkDir(dir); err != nil {
			return nil, fmt.Errorf("load templates: %w", err)
		}
		global = append(global, layer{dir, os.DirFS(dir)})
	}
	c := &catalog{sets: map[string]map[string]*templateSet{}}
	all := append([]brand.Brand{*brand.Neutral}, brands...)
	for _, b := range all {
		layers := global
		if b.TemplatesDir != "" {
			if err := checkDir(b.TemplatesDir); err != nil {
				return nil, fmt.Errorf("load templates of brand %s: %w", b.ID, err)
			}
			layers = append(slices.Clip(layers), layer{b.TemplatesDir, os.DirFS(b.TemplatesDir)})
		}
		c.sets[b.ID] = map[string]*templateSet{}
		for _, locale := range Locales() {
			set := &templateSet{layout: string(layout), text: map[string]*texttemplate.Template{},
				html: map[string]*htmltemplate.Template{}, htmlSrc: map[string]string{}}
			// English first: a file a locale lacks falls back to the English one.
			for _, l := range slices.Compact([]string{"en", locale}) {
				sub, err := fs.Sub(embedded, l)
				if err == nil {
					err = set.parseDir(sub)
				}
				if err != nil {
					return nil, fmt.Errorf("load embedded templates/%s: %w", l, err)
				}
			}
			err = set.parseLayers(layers, locale)
			if err == nil {
				err = set.finish()
			}
			if err != nil {
				if b.ID != brand.Neutral.ID {
					err = fmt.Errorf("brand %s: %w", b.ID, err)
				}
				return nil, fmt.Errorf("load templates: %w", err)
			}
			c.sets[b.ID][locale] = set
		}
	}
	return c, nil
}

// parseLayers parses each layer's top and then its locale subdirectory into set.
func (set *templateSet) parseLayers(layers []layer, locale string) error {
	for _, l := range layers {
		if err := set.parseDir(l.fsys); err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		if sub, err := fs.Sub(l.fsys, locale); err == nil {
			if err := set.parseDir(sub); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(l.name, locale), err)
			}
		}
	}
	return nil
}

// layer is one directory of template overrides.
type layer struct {
	name string
	fsys fs.FS
}

// checkDir reports a template directory that is missing or not a directory: fs.Glob would
// ignore it, and a typo in the setting must not go unnoticed.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// finish parses the HTML files with the layout of the last layer that had one.
func (set *templateSet) finish() error {
	for name, src := range set.htmlSrc {
		t, err := htmltemplate.New(name).Option("missingkey=error").Parse(set.layout)
		if err == nil {
			t, err = t.Parse(src)
		}
		if err != nil {
			return fmt.Errorf("parse %s with %s: %w", name, layoutTemplate, err)
		}
		set.html[name] = t
	}
	set.htmlSrc = nil
	return nil
}

// parseDir parses every *.tmpl file of fsys into set, replacing files of the same name. A
// layout.html.tmpl replaces the layout of the files parsed after it.
func (set *templateSet) parseDir(fsys fs.FS) error {
	names, err := fs.Glob(fsys, "*.tmpl")
	if err != nil {
		return err
	}
	if src, err := fs.ReadFile(fsys, layoutTemplate); err == nil {
		if _, err := htmltemplate.New(layoutTemplate).Parse(string(src)); err != nil {
			return fmt.Errorf("parse %s: %w", layoutTemplate, err)
		}
		set.layout = string(src)
	}
	for _, name := range names {
		if name == layoutTemplate {
			continue
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, ".html.tmpl") {
			// Parsed with the final layout by finish; a syntax error is reported now.
			if _, err := htmltemplate.New(name).Parse(string(src)); err != nil {
				return fmt.Errorf("parse %s: %w", name, err)
			}
			set.htmlSrc[name] = string(src)
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

// templateData builds the data the templates see for r from brand b in locale, with now as
// the clock when r.Now is zero.
func templateData(r *Reminder, now time.Time, b *brand.Brand, locale string) TemplateData {
	return TemplateData{
		Brand:       brandData(b),
		Locale:      locale,
		NameFirst:   strings.TrimSpace(r.NameFirst),
		TimeLeft:    TimeLeftIn(locale, r.TimeLeft(now)),
		Link:        r.Link,
		Stage:       r.Stage.Name,
		ExpiresAt:   r.ExpiresAt.UTC(),
		InquiryID:   r.InquiryID,
		ReferenceID: r.ReferenceID,
	}
}
