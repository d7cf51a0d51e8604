package api

import (
	"testing"
	"time"
)

// TestShortDuration checks the durations the problem details show.
func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 10 * time.Minute: "10m", 90 * time.Second: "1m30s",
		30 * time.Second: "30s", time.Hour + time.Second: "1h0m1s", 25 * time.Hour: "25h"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
