package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/internal/testenv"
)

// TestEmailRendersInBrowser renders every reminder template in every locale, for a branded
// and the neutral deployment, in headless Chromium at a phone's and a desktop's width, and
// checks what a person would: the brand's logo loaded (its alt text is the brand name) and the
// name in the text, the button visible, inside the screen and in white on the brand colour,
// the fallback link visible, nothing wider than the screen. Screenshots are kept as test
// artefacts (go test -artifacts -outputdir=DIR; the paths are logged). It also checks the
// HTML holds up in mail clients: inline styles only, no <style>, <link> or <script>, a
// table layout, explicit colours on every cell. Skipped when chromium is not installed.
func TestEmailRendersInBrowser(t *testing.T) {
	bin := testenv.Chromium(t)
	var (
		mu    sync.Mutex
		pages = map[string]string{}
	)
	logo := logoPNG(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/logo.png" {
			w.Header().Set("Content-Type", "image/png")
			w.Write(logo)
			return
		}
		mu.Lock()
		page, ok := pages[r.URL.Path]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)

	branded, err := brand.New([]brand.Brand{{ID: "acme", Name: "Acme Bank", LogoURL: srv.URL + "/logo.png", Color: "#0b5394",
		SupportEmail: "help@acme.example", SupportURL: "https://acme.example/help",
		Footer: "Acme Bank plc · 1 Main Street · Springfield"}}, "", Locales())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.ArtifactDir()
	b := testenv.StartBrowser(t, bin)
	for _, deployment := range []struct {
		name   string
		brands *brand.Set
	}{{"acme", branded}, {"neutral", nil}} {
		ch := newTestEmail(t, nil, func(o *EmailOptions) { o.Brands = deployment.brands })
		for _, locale := range Locales() {
			for _, stage := range []Stage{NewStage(6 * time.Hour), NewStage(time.Hour), {Name: WinbackStage, Before: 72 * time.Hour}} {
				r := testReminder(stage, "Ana")
				r.Locale = locale
				msg, br, err := ch.render(r, testClock)
				if err != nil {
					t.Fatal(err)
				}
				checkMailHTML(t, msg.HTML)
				path := fmt.Sprintf("/%s-%s-%s.html", deployment.name, locale, stage.Name)
				mu.Lock()
				pages[path] = msg.HTML
				mu.Unlock()
				button := buttonLabel(t, msg.HTML)
				for _, view := range []struct {
					name   string
					w, h   int
					mobile bool
				}{{"phone", 375, 740, true}, {"desktop", 1280, 900, false}} {
					name := fmt.Sprintf("%s-%s-%s-%s", deployment.name, locale, stage.Name, view.name)
					t.Run(name, func(t *testing.T) {
						b.SetViewport(view.w, view.h, view.mobile)
						b.Navigate(srv.URL + path)
						b.WaitFor("Array.from(document.images).every(i => i.complete)")
						shot := filepath.Join(dir, name+".png")
						b.Screenshot(shot)
						t.Logf("screenshot: %s", shot)
						checkRendered(t, b, br, button, view.w)
					})
				}
			}
		}
	}
}

// rendered is what the page says about itself, measured in the browser.
type rendered struct {
	Text        string  `json:"text"`
	ScrollWidth float64 `json:"scrollWidth"`
	Button      box     `json:"button"`
	ButtonColor string  `json:"buttonColor"`
	ButtonBg    string  `json:"buttonBg"`
	Link        box     `json:"link"`
	Logo        *struct {
		Alt   string  `json:"alt"`
		Width float64 `json:"width"`
		Box   box     `json:"box"`
	} `json:"logo"`
}

type box struct{ X, Y, W, H float64 }

const measureJS = `(() => {
  const rect = e => { if (!e) return {X:0,Y:0,W:0,H:0}; const r = e.getBoundingClientRect(); return {X:r.x,Y:r.y,W:r.width,H:r.height}; };
  const links = Array.from(document.querySelectorAll('a'));
  const button = links.find(a => a.parentElement && a.parentElement.tagName === 'TD' && a.parentElement.hasAttribute('bgcolor'));
  const fallback = links.find(a => a !== button && a.textContent.startsWith('https://'));
  const img = document.querySelector('img');
  const cell = button ? button.parentElement : null;
  return {
    text: document.body.innerText,
    scrollWidth: document.documentElement.scrollWidth,
    button: rect(button), buttonColor: button ? getComputedStyle(button).color : '',
    buttonBg: cell ? getComputedStyle(cell).backgroundColor : '',
    link: rect(fallback),
    logo: img ? {alt: img.alt, width: img.naturalWidth, box: rect(img)} : null,
  };
})()`

// checkRendered checks the page in the browser against brand br and the button's label.
func checkRendered(t *testing.T, b *testenv.Browser, br *brand.Brand, button string, width int) {
	t.Helper()
	var got rendered
	if err := json.Unmarshal(b.Eval(measureJS), &got); err != nil {
		t.Fatal(err)
	}
	visible := func(name string, bx box) {
		t.Helper()
		if bx.W < 1 || bx.H < 1 || bx.X < 0 || bx.X+bx.W > float64(width)+0.5 {
			t.Errorf("%s not visible within the %dpx screen: %+v", name, width, bx)
		}
	}
	if got.ScrollWidth > float64(width) {
		t.Errorf("page is %vpx wide on a %dpx screen", got.ScrollWidth, width)
	}
	visible("button", got.Button)
	if !strings.Contains(got.Text, button) {
		t.Errorf("button label %q not in the visible text", button)
	}
	if got.ButtonColor != "rgb(255, 255, 255)" || got.ButtonBg != cssRGB(br.PrimaryColor()) {
		t.Errorf("button %s on %s, want white on %s", got.ButtonColor, got.ButtonBg, cssRGB(br.PrimaryColor()))
	}
	visible("fallback link", got.Link)
	if !strings.Contains(got.Text, "https://resume.example.com/r/tok_SECRET") {
		t.Error("the fallback link's text is not visible")
	}
	if br.Name != "" && !strings.Contains(got.Text, br.Name) {
		t.Errorf("brand name %q not in the visible text", br.Name)
	}
	switch {
	case br.LogoURL != "" && got.Logo == nil:
		t.Error("no logo")
	case br.LogoURL != "":
		if got.Logo.Alt != br.Name || got.Logo.Width == 0 {
			t.Errorf("logo alt %q, natural width %v: want alt %q and a loaded image", got.Logo.Alt, got.Logo.Width, br.Name)
		}
		visible("logo", got.Logo.Box)
	case got.Logo != nil:
		t.Error("a logo without a brand logo")
	}
	if br.Footer != "" && !strings.Contains(got.Text, br.Footer) {
		t.Errorf("footer %q not visible", br.Footer)
	}
}

var (
	tagRE      = regexp.MustCompile(`(?i)<(style|link|script|iframe|form)\b`)
	eventRE    = regexp.MustCompile(`(?i)\son[a-z]+=`)
	tdRE       = regexp.MustCompile(`<td\b[^>]*>`)
	buttonRE   = regexp.MustCompile(`<td align="center" bgcolor="[^"]+"[^>]*>\s*<a [^>]*>([^<]+)</a>`)
	remoteCSSR = regexp.MustCompile(`(?i)url\(|@import`)
)

// checkMailHTML checks what mail clients need: no style sheets, scripts or forms, table
// layout, a background colour on every cell (so a forced dark mode inverts consistently).
func checkMailHTML(t *testing.T, html string) {
	t.Helper()
	if m := tagRE.FindString(html); m != "" {
		t.Errorf("html has %s", m)
	}
	if eventRE.MatchString(html) || remoteCSSR.MatchString(html) {
		t.Error("html has an event handler or a remote CSS reference")
	}
	if !strings.Contains(html, `<table role="presentation"`) {
		t.Error("html is not laid out in tables")
	}
	for _, td := range tdRE.FindAllString(html, -1) {
		if !strings.Contains(td, "background-color:") {
			t.Errorf("cell without a background colour: %s", td)
		}
	}
	if strings.Contains(html, "ZgotmplZ") {
		t.Error("html/template refused a value (ZgotmplZ)")
	}
}

// buttonLabel is the text of the message's button.
func buttonLabel(t *testing.T, html string) string {
	t.Helper()
	m := buttonRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no button in %s", html)
	}
	return m[1]
}

// cssRGB is "#rrggbb" as a computed style says it.
func cssRGB(hex string) string {
	var r, g, b int
	fmt.Sscanf(hex, "#%02x%02x%02x", &r, &g, &b)
	return fmt.Sprintf("rgb(%d, %d, %d)", r, g, b)
}

// logoPNG is a small logo: a blue bar.
func logoPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 160, 40))
	for x := range 160 {
		for y := range 40 {
			img.Set(x, y, color.RGBA{11, 83, 148, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
