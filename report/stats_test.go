package report

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 5e-4 }

// TestWilson checks the Wilson interval against published values (Newcombe 1998, table I:
// 81/263 gives 0.2553 to 0.3662; 15/148 gives 0.0624 to 0.1605; 0/10 gives 0 to 0.2775).
func TestWilson(t *testing.T) {
	for _, c := range []struct {
		x, n      int64
		low, high float64
	}{
		{81, 263, 0.2553, 0.3662}, {15, 148, 0.0624, 0.1605}, {0, 10, 0, 0.2775}, {1, 29, 0.0061, 0.1718},
	} {
		got := Wilson(c.x, c.n)
		if !near(got.Low, c.low) || !near(got.High, c.high) || !near(got.Value, float64(c.x)/float64(c.n)) {
			t.Errorf("Wilson(%d, %d) = %+v, want %.4f..%.4f", c.x, c.n, got, c.low, c.high)
		}
	}
	if got := Wilson(0, 0); got != (Interval{}) {
		t.Errorf("Wilson(0, 0) = %+v", got)
	}
}

// TestNewcombe checks method 10 against Newcombe 1998, table II: 56/70 - 48/80 gives 0.0524
// to 0.3339; 9/10 - 3/10 gives 0.1705 to 0.8090; 6/7 - 2/7 gives 0.0582 to 0.8062; 5/56 -
// 0/29 gives -0.0381 to 0.1926.
func TestNewcombe(t *testing.T) {
	for _, c := range []struct {
		x1, n1, x0, n0 int64
		low, high      float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339}, {9, 10, 3, 10, 0.1705, 0.8090},
		{6, 7, 2, 7, 0.0582, 0.8062}, {5, 56, 0, 29, -0.0381, 0.1926},
	} {
		got, ok := Newcombe(c.x1, c.n1, c.x0, c.n0)
		if !ok || !near(got.Low, c.low) || !near(got.High, c.high) {
			t.Errorf("Newcombe(%d/%d - %d/%d) = %+v, want %.4f..%.4f", c.x1, c.n1, c.x0, c.n0, got, c.low, c.high)
		}
	}
	if _, ok := Newcombe(1, 2, 0, 0); ok {
		t.Error("Newcombe with an empty group: ok")
	}
}
