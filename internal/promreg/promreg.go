// Package promreg registers Prometheus collectors that several components of one process may
// each try to register: the Persona client of the notify and api roles, one metric set per
// notification channel. promauto.With would panic on the second registration; Register hands
// back the collector registered first.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or the identical collector (same name, labels
// and help) registered before. Any other registration error (a name reused with other labels
// or help, an invalid name) is a programming error and panics, as promauto does.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}
