package persona

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzObject checks that decodeObject reads any body as encoding/json does: it accepts what
// json.Valid accepts, and for every object it has the same keys and, key by key, the same
// values as a UseNumber decode (nested objects and arrays of objects compared through the
// object's own lookups). UseNumber keeps the reference from refusing valid JSON whose number
// does not fit a float64 (`{"a":1e999}`), which decodeObject rightly accepts.
func FuzzObject(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, ` null `, `[]`, `"s"`, `1`, `{}`, ` { } `, `{"a":1,}`, `{"a" 1}`, `{"a":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"}`,
		`{"a":1,"a":{"b":2}}`, `{"k\u0065y":"v","k-e_y":"w","kEy":"x"}`, "{\"\xff\":\"\xfe\"}", `{"a":[1,{"b":"}"},[{"c":"]"}],null]}`,
		"{\n\t\"a\" :\r\n [ ] , \"b\":-1.5e+3 ,\"c\":true,\"d\":false,\"e\":null}", `{"a":"\ud800"}`, `{"a":{"b":{"c":{"d":[{"e":"f"}]}}}}`,
		`{"a":1e999}`, `{"a":-1e999,"b":[1e400]}`, `{"a":123456789012345678901234567890}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeObject(body)
		if !json.Valid(body) {
			if err == nil {
				t.Fatal("decodeObject accepted what json.Valid refuses")
			}
			return
		}
		want, wantErr := decodeNumbers(body)
		if wantErr != nil {
			t.Fatalf("json.Valid accepted what a UseNumber decode refuses: %v", wantErr)
		}
		switch w := want.(type) {
		case nil:
			if err != nil || got != nil {
				t.Fatalf("null: got %v, %v", got, err)
			}
		case map[string]any:
			if err != nil {
				t.Fatalf("object refused: %v", err)
			}
			compareObject(t, "", got, w)
		default:
			if err == nil {
				t.Fatalf("%T accepted as an object", want)
			}
		}
	})
}

// FuzzValidJSON checks that validJSON accepts exactly what json.Valid accepts.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1E+2`, `1e-02`, `.5`, `+1`, `true`, `tru`, `nul`, `nulls`,
		`""`, `"\u12"`, `"\u12g4"`, `"\x"`, "\"\x01\"", `"\/"`, `[]`, `[,]`, `[1,]`, `[1 2]`, `{}`, `{,}`, `{"a"}`,
		`{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{1:2}`, `[[[]]]`, `[{"a":[{}]}]`, "\xef\xbb\xbf{}", `{} {}`, `]`, `}`,
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Repeat("[", maxNestingDepth) + strings.Repeat("]", maxNestingDepth)))
	f.Add([]byte(strings.Repeat("[", maxNestingDepth+1) + strings.Repeat("]", maxNestingDepth+1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

// decodeNumbers decodes b as encoding/json does with UseNumber: numbers stay json.Number, so
// valid JSON never fails for a number out of float64's range.
func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// compareObject checks got against want, json.Unmarshal's reading of the same object.
func compareObject(t *testing.T, path string, got object, want map[string]any) {
	t.Helper()
	distinct := map[string]bool{}
	for _, m := range got {
		distinct[string(m.key)] = true
	}
	if len(distinct) != len(want) {
		t.Fatalf("%s: %d distinct keys, want %d", path, len(distinct), len(want))
	}
	for k, wv := range want {
		m := got.lookup(k)
		if m == nil {
			t.Fatalf("%s: key %q missing", path, k)
		}
		raw := m.raw()
		gv, err := decodeNumbers(raw)
		if err != nil {
			t.Fatalf("%s.%s: raw value %q: %v", path, k, raw, err)
		}
		if !reflect.DeepEqual(gv, wv) {
			t.Fatalf("%s.%s: %#v, want %#v", path, k, gv, wv)
		}
		switch w := wv.(type) {
		case string:
			if s := got.str(k); s != w {
				t.Fatalf("%s.%s: str %q, want %q", path, k, s, w)
			}
		case map[string]any:
			sub, err := got.object(k)
			if err != nil || sub == nil {
				t.Fatalf("%s.%s: object %v, %v", path, k, sub, err)
			}
			compareObject(t, path+"."+k, sub, w)
		case []any:
			objs, err := got.objects(k)
			if err != nil {
				t.Fatalf("%s.%s: objects: %v", path, k, err)
			}
			var wantObjs []map[string]any
			for _, e := range w {
				if m, ok := e.(map[string]any); ok {
					wantObjs = append(wantObjs, m)
				}
			}
			if len(objs) != len(wantObjs) {
				t.Fatalf("%s.%s: %d objects, want %d", path, k, len(objs), len(wantObjs))
			}
			for i := range objs {
				compareObject(t, path+"."+k, objs[i], wantObjs[i])
			}
		case nil:
			if sub, err := got.object(k); sub != nil || err != nil {
				t.Fatalf("%s.%s: null read as object %v, %v", path, k, sub, err)
			}
		default:
			if _, err := got.object(k); err == nil {
				t.Fatalf("%s.%s: %T read as an object", path, k, wv)
			}
		}
	}
}
