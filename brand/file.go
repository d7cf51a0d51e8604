package brand

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is the brands file of RESUMER_BRANDS_FILE, YAML or JSON (JSON is read as YAML, so
// errors name lines either way):
//
//	default: acme            # the brand of inquiries no rule selects; the first when absent
//	brands:
//	  - id: acme
//	    name: Acme Bank
//	    logo_url: https://acme.example/logo.png
//	    color: "#0b5394"
//	    support_email: help@acme.example
//	    support_url: https://acme.example/help
//	    footer: Acme Bank plc, 1 Main Street, Springfield
//	    sender: Acme Bank <verify@acme.example>
//	    fresh_link_url: https://app.acme.example/verify/resend
//	    locale: en
//	    templates: [itmpl_acme_kyc]
//	    reference_prefixes: [acme]
//	    templates_dir: /etc/resumer/templates/acme
type File struct {
	Default string  `json:"default" yaml:"default"`
	Brands  []Brand `json:"brands" yaml:"brands"`

	// lines maps brand index and field name to the line the field is on; index -1 is the
	// file's top level.
	lines map[int]map[string]int
}

// Load reads and validates the brands file at path. locales are the locales a brand may
// name. Every error names the file and, when it is about a place in it, the line: a syntax
// error, an unknown field (a typo), a value of the wrong type, an invalid field value, a
// duplicate id or template, a default that names no brand, or no brands at all.
func Load(path string, locales []string) (*Set, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load brands: %w", err)
	}
	s, err := Parse(src, locales)
	if err != nil {
		return nil, fmt.Errorf("load brands from %s: %w", path, err)
	}
	return s, nil
}

// Parse is Load on the file's content.
func Parse(src []byte, locales []string) (*Set, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, fmt.Errorf("%w", cleanYAMLError(err))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, err
	}
	f.lines = fieldLines(&root)
	return f.set(locales)
}

// set validates f and builds its Set.
func (f *File) set(locales []string) (*Set, error) {
	if len(f.Brands) == 0 {
		return nil, f.errAt(-1, "brands", "no brands")
	}
	s := &Set{brands: append([]Brand(nil), f.Brands...)}
	ids := map[string]int{}
	templates := map[string]string{}
	for i := range s.brands {
		b := &s.brands[i]
		if err := b.Validate(locales); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				return nil, f.errAt(i, fe.Field, "brand %d (%s): %s", i+1, b.ID, fe.Msg)
			}
			return nil, f.errAt(i, "", "brand %d (%s): %v", i+1, b.ID, err)
		}
		if j, dup := ids[b.ID]; dup {
			return nil, f.errAt(i, "id", "brand %d: id %q already used by brand %d", i+1, b.ID, j+1)
		}
		ids[b.ID] = i
		for _, t := range b.Templates {
			if other, dup := templates[t]; dup {
				return nil, f.errAt(i, "templates", "brand %d (%s): template %s already belongs to brand %s", i+1, b.ID, t, other)
			}
			templates[t] = b.ID
		}
	}
	if f.Default != "" {
		j, ok := ids[f.Default]
		if !ok {
			return nil, f.errAt(-1, "default", "default %q names no brand", f.Default)
		}
		s.def = j
	}
	return s, nil
}

// errAt is an error about field of brand i (-1: the top level), prefixed with its line when
// known.
func (f *File) errAt(i int, field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if line := f.lines[i][field]; line > 0 {
		return fmt.Errorf("line %d: %s", line, msg)
	}
	if line := f.lines[i][""]; line > 0 {
		return fmt.Errorf("line %d: %s", line, msg)
	}
	return errors.New(msg)
}

// fieldLines finds the line of every top-level key and of every brand's keys ("" is the
// line the brand starts on).
func fieldLines(root *yaml.Node) map[int]map[string]int {
	out := map[int]map[string]int{-1: {}}
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return out
	}
	for k := 0; k+1 < len(doc.Content); k += 2 {
		key, val := doc.Content[k], doc.Content[k+1]
		out[-1][key.Value] = key.Line
		if key.Value != "brands" || val.Kind != yaml.SequenceNode {
			continue
		}
		for i, b := range val.Content {
			m := map[string]int{"": b.Line}
			for j := 0; b.Kind == yaml.MappingNode && j+1 < len(b.Content); j += 2 {
				m[b.Content[j].Value] = b.Content[j].Line
			}
			out[i] = m
		}
	}
	return out
}

// cleanYAMLError drops the library's "yaml: " prefix: the caller says what was read.
func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	return errors.New(msg)
}
