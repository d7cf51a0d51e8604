package api

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// TestAPIDoesNotImportNotify keeps the roles apart (DESIGN.md, the package table): links are
// shared through package link, so the api role never pulls in the notifier.
func TestAPIDoesNotImportNotify(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("list api sources: %v (%d files)", err, len(files))
	}
	fset := token.NewFileSet()
	for _, f := range files {
		parsed, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for _, imp := range parsed.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/resumer/resumer/notify" {
				t.Errorf("%s imports %s; share what both need through package link", f, p)
			}
		}
	}
}
