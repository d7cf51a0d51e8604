package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readYAML decodes the YAML file at path into v, ignoring fields v does not have.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	decodeYAML(t, path, v, false)
}

// readYAMLStrict decodes the YAML file at path into v and fails on any field v does not
// have, so that a misspelt key is an error rather than silently ignored.
func readYAMLStrict(t *testing.T, path string, v any) {
	t.Helper()
	decodeYAML(t, path, v, true)
}

func decodeYAML(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// yamlDocs splits a multi-document YAML stream into nodes, skipping empty documents.
func yamlDocs(b []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) > 0 && n.Content[0].Kind != 0 && !(n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			docs = append(docs, &n)
		}
	}
}
