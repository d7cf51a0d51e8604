package report

import "math"

// z95 is the standard normal quantile of a two-sided 95 % interval.
const z95 = 1.959963984540054

// MinSample is the smallest group (reminded or held out) from which the report draws a
// conclusion; below it the uplift is reported as too small a sample to conclude.
const MinSample = 30

// Interval is a proportion or a difference of proportions with its 95 % confidence interval.
type Interval struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

// Wilson returns the proportion x/n with its 95 % Wilson score interval; zeros when n is 0.
func Wilson(x, n int64) Interval {
	if n <= 0 {
		return Interval{}
	}
	p := float64(x) / float64(n)
	nf, z2 := float64(n), z95*z95
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return Interval{Value: p, Low: math.Max(0, center-half), High: math.Min(1, center+half)}
}

// Newcombe returns the difference x1/n1 - x0/n0 with its 95 % confidence interval by
// Newcombe's hybrid score method (method 10 of Newcombe 1998), built from the two Wilson
// intervals. ok is false when either n is 0.
func Newcombe(x1, n1, x0, n0 int64) (d Interval, ok bool) {
	if n1 <= 0 || n0 <= 0 {
		return Interval{}, false
	}
	a, b := Wilson(x1, n1), Wilson(x0, n0)
	diff := a.Value - b.Value
	return Interval{
		Value: diff,
		Low:   diff - math.Sqrt(sq(a.Value-a.Low)+sq(b.High-b.Value)),
		High:  diff + math.Sqrt(sq(a.High-a.Value)+sq(b.Value-b.Low)),
	}, true
}

func sq(x float64) float64 { return x * x }
