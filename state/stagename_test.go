package state

import (
	"testing"
	"time"
)

// TestStageName: stage names are what operators configured, in metric labels too: never a
// bare count of seconds.
func TestStageName(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{6 * time.Hour, "6h"},
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "90m"},
		{45 * time.Second, "45s"},
		{24*time.Hour - 2*time.Second, "23h59m58s"},
		{time.Hour + 5*time.Second, "1h5s"},
		{90*time.Second + 300*time.Millisecond, "1m30s"},
	} {
		if got := StageName(tt.d); got != tt.want {
			t.Errorf("StageName(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
