package persona_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resumer/resumer/persona"
)

type versionFunc func(ctx context.Context, templateID string) (string, error)

func (f versionFunc) Current(ctx context.Context, templateID string) (string, error) {
	return f(ctx, templateID)
}

// TestSuperseded: an inquiry is on an older version only when both ids are known and the
// template's current version is known and another; an unknown current version is an error
// and never a verdict.
func TestSuperseded(t *testing.T) {
	down := errors.New("persona down")
	current := func(v string, err error) versionFunc {
		return func(_ context.Context, id string) (string, error) {
			if id != "itmpl_1" {
				t.Errorf("asked for template %q", id)
			}
			return v, err
		}
	}
	for _, tt := range []struct {
		name              string
		src               persona.CurrentVersioner
		template, version string
		want              bool
		wantErr           error
	}{
		{"older", current("itmplv_2", nil), "itmpl_1", "itmplv_1", true, nil},
		{"current", current("itmplv_1", nil), "itmpl_1", "itmplv_1", false, nil},
		{"no current version", current("", nil), "itmpl_1", "itmplv_1", false, nil},
		{"unknown", current("", down), "itmpl_1", "itmplv_1", false, down},
		{"no version pinned", current("itmplv_2", nil), "itmpl_1", "", false, nil},
		{"no template", current("itmplv_2", nil), "", "itmplv_1", false, nil},
		{"no source", nil, "itmpl_1", "itmplv_1", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := persona.Superseded(context.Background(), tt.src, tt.template, tt.version)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Superseded = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
