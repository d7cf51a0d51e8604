package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// roleDeps names the dependencies each role needs to do its work. Intake needs only NATS and
// the events stream: a webhook pod stays ready while Redis is away, so Persona's deliveries
// are still stored. Reconciliation keeps its lease and checkpoint in Redis and publishes the
// events it replays into the events stream (it starts only once the stream exists). A
// dependency no role lists here is needed by every role; every role in allRoles has an entry
// (TestReadyzEveryRoleListsDeps), or its /readyz line would name no dependency at all.
var roleDeps = map[string][]string{
	"webhook":   {"nats", "stream"},
	"worker":    {"nats", "stream", "redis", "consumer"},
	"notify":    {"redis"},
	"api":       {"redis"},
	"reconcile": {"nats", "stream", "redis"},
}

// readiness answers /readyz and /readyz/{role}. /readyz is 200 when every dependency of every
// role the process runs is up; /readyz/{role} looks only at that role's dependencies (a
// probe for a pod whose traffic goes to one role). The body names each role and dependency
// with its state, so an operator sees at once what is missing.
type readiness struct {
	roles  []string
	names  []string
	checks []func(context.Context) error
}

// add registers a dependency check.
func (r *readiness) add(name string, check func(context.Context) error) {
	r.names = append(r.names, name)
	r.checks = append(r.checks, check)
}

// needs reports whether role depends on the dependency named dep.
func needs(role, dep string) bool {
	for _, deps := range roleDeps {
		if slices.Contains(deps, dep) {
			return slices.Contains(roleDeps[role], dep)
		}
	}
	return true
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	roles := r.roles
	if role := req.PathValue("role"); role != "" {
		if !slices.Contains(r.roles, role) {
			http.Error(w, fmt.Sprintf("role %q does not run in this process (roles: %s)", role, strings.Join(r.roles, ",")), http.StatusNotFound)
			return
		}
		roles = []string{role}
	}
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	// Check each dependency once, concurrently: a slow one costs its own timeout only.
	errs := make([]error, len(r.checks))
	done := make(chan struct{})
	var pending int
	for i, check := range r.checks {
		used := false
		for _, role := range roles {
			used = used || needs(role, r.names[i])
		}
		if !used {
			continue
		}
		pending++
		go func() {
			errs[i] = check(ctx)
			done <- struct{}{}
		}()
	}
	for ; pending > 0; pending-- {
		<-done
	}
	var b strings.Builder
	ready := true
	for _, role := range roles {
		var parts []string
		roleOK := true
		for i, name := range r.names {
			if !needs(role, name) {
				continue
			}
			if errs[i] != nil {
				roleOK = false
				parts = append(parts, name+": "+errs[i].Error())
			} else {
				parts = append(parts, name+": ok")
			}
		}
		state := "ready"
		if !roleOK {
			state, ready = "not ready", false
		}
		fmt.Fprintf(&b, "%s: %s (%s)\n", role, state, strings.Join(parts, "; "))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	io.WriteString(w, b.String())
}
