package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterReusesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "resumer_test_total", Help: "test"}
	first := Register(reg, prometheus.NewCounter(opts))
	second := Register(reg, prometheus.NewCounter(opts))
	second.Inc()
	if first != second {
		t.Fatal("second registration did not return the first collector")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a conflicting registration did not panic")
		}
	}()
	Register(reg, prometheus.NewCounterVec(opts, []string{"x"}))
}
