package brand

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testLocales = []string{"en", "es", "de"}

const goodYAML = `# two brands
default: acme
brands:
  - id: acme
    name: Acme Bank
    logo_url: https://acme.example/logo.png
    color: "#0b5394"
    support_email: help@acme.example
    footer: Acme Bank plc, 1 Main Street, Springfield
    sender: Acme Bank <verify@acme.example>
    templates: [itmpl_acme]
    reference_prefixes: [acme]
  - id: globex
    name: Globex
    locale: de
    reference_prefixes: [globex, globex-eu]
  - id: initech
    name: Initech
    templates: [itmpl_initech]
`

func TestParseAndPick(t *testing.T) {
	s, err := Parse([]byte(goodYAML), testLocales)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ template, ref, want string }{
		{"itmpl_initech", "acme-1", "initech"}, // the template wins over the prefix
		{"itmpl_other", "acme-1", "acme"},
		{"", "acme", "acme"},
		{"", "acmecorp-1", "acme"}, // no rule: the default
		{"", "globex-eu-7", "globex"},
		{"", "globex:7", "globex"},
		{"", "", "acme"},
	} {
		if got := s.For(tc.template, tc.ref); got.ID != tc.want {
			t.Errorf("For(%q, %q) = %s, want %s", tc.template, tc.ref, got.ID, tc.want)
		}
	}
	if b := s.ByID("globex"); b == nil || b.DefaultLocaleOr() != "de" || b.PrimaryColor() != DefaultColor {
		t.Errorf("globex: %+v", b)
	}
	var none *Set
	if none.For("itmpl_acme", "acme") != Neutral || len(none.All()) != 0 {
		t.Error("a nil Set does not give the neutral brand")
	}
}

// TestParseJSON: JSON is read too, and its errors name lines as well.
func TestParseJSON(t *testing.T) {
	good := `{"brands": [{"id": "acme", "name": "Acme"}]}`
	if s, err := Parse([]byte(good), testLocales); err != nil || s.For("", "").Name != "Acme" {
		t.Fatalf("Parse JSON: %v", err)
	}
	bad := "{\n  \"brands\": [\n    {\"id\": \"acme\",\n     \"name\": \"Acme\",\n     \"colour\": \"#000000\"}\n  ]\n}"
	_, err := Parse([]byte(bad), testLocales)
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown JSON field: %v, want line 5 naming colour", err)
	}
}

// TestParseErrorsNameTheLine: every kind of mistake is refused with the line it is on.
func TestParseErrorsNameTheLine(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(goodYAML, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(goodYAML, old, new, 1)
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"typo in a field", edit("    footer:", "    fotter:"), "line 9: field fotter not found"},
		{"bad colour", edit(`"#0b5394"`, `"blue"`), `line 7: brand 1 (acme): color "blue": want #rrggbb`},
		{"light colour", edit(`"#0b5394"`, `"#ffee00"`), "line 7: brand 1 (acme): color \"#ffee00\": white text on it has a contrast ratio"},
		{"relative logo", edit("https://acme.example/logo.png", "/logo.png"), "line 6: brand 1 (acme): logo_url"},
		{"support with a name", edit("help@acme.example", "Help <help@acme.example>"), "line 8: brand 1 (acme): support_email"},
		{"bad sender", edit("Acme Bank <verify@acme.example>", "verify at acme"), "line 10: brand 1 (acme): sender"},
		{"unknown locale", edit("locale: de", "locale: fr"), `line 15: brand 2 (globex): locale "fr": want one of en, es, de`},
		{"missing name", edit("    name: Globex\n", ""), "line 13: brand 2 (globex): name: required"},
		{"duplicate id", edit("id: initech", "id: acme"), `line 17: brand 3: id "acme" already used by brand 1`},
		{"template twice", edit("[itmpl_initech]", "[itmpl_acme]"), "line 19: brand 3 (initech): template itmpl_acme already belongs to brand acme"},
		{"not a template id", edit("[itmpl_initech]", "[acme]"), "line 19: brand 3 (initech): templates"},
		{"unknown default", edit("default: acme", "default: umbrella"), `line 2: default "umbrella" names no brand`},
		{"wrong type", edit("[itmpl_initech]", "{a: b}"), "line 19"},
		{"syntax", edit("  - id: globex", "  - id: [globex"), "line"},
		{"no brands", "brands: []\n", "line 1: no brands"},
		{"empty", "", "the file is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), testLocales)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "brands.yaml")
	if err := os.WriteFile(path, []byte("brands:\n  - id: Bad Id\n    name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, testLocales)
	if err == nil || !strings.Contains(err.Error(), path+": line 2: brand 1 (Bad Id): id") {
		t.Errorf("Load = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), testLocales); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestContrast(t *testing.T) {
	for hex, want := range map[string]float64{"#000000": 21, "#ffffff": 1, DefaultColor: 6.1} {
		if got := contrastWithWhite(hex); got < want-0.1 || got > want+0.1 {
			t.Errorf("contrast of %s = %.2f, want %.1f", hex, got, want)
		}
	}
}
