package deploy

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkDeployment checks one Deployment and returns its roles, the Secret keys it reads and
// the environment resumer gets.
func checkDeployment(t *testing.T, cfg configTable, d deployment, configMaps map[string]map[string]string, serviceAccounts map[string]bool, opts manifestOptions) ([]string, map[string][]string, map[string]string) {
	t.Helper()
	name := "Deployment " + d.Metadata.Name
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf(name+": "+format, args...)
	}
	tmpl := d.Spec.Template
	pod := tmpl.Spec
	if tmpl.Metadata.Labels["app.kubernetes.io/name"] != "resumer" || tmpl.Metadata.Labels["app.kubernetes.io/component"] == "" {
		errorf("pods need the labels app.kubernetes.io/name=resumer and app.kubernetes.io/component")
	}
	if !d.Spec.Selector.matches(tmpl.Metadata.Labels) {
		errorf("the selector %v does not select its own pods", d.Spec.Selector.MatchLabels)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		errorf("want exactly one container, resumer")
	}
	c := resumerContainer(d)

	// Image and command.
	switch {
	case opts.pinned:
		repo, tag, _ := strings.Cut(path.Base(c.Image), ":")
		if repo != "resumer" || tag == "" || tag == "latest" {
			if !strings.Contains(c.Image, "@sha256:") {
				errorf("image %s: want the resumer image at a version", c.Image)
			}
		}
	case c.Image != opts.image:
		errorf("image %s, want %s (the overlay points it at a registry)", c.Image, opts.image)
	}
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "serve" {
		errorf("want args [serve] and the image's entrypoint, got command %v args %v", c.Command, c.Args)
	}

	// The environment resumer sees.
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			data, ok := configMaps[ef.ConfigMapRef.Name]
			if !ok {
				errorf("envFrom ConfigMap %s, which is not part of the set", ef.ConfigMapRef.Name)
			}
			for k, v := range data {
				env[k] = v
			}
		case ef.SecretRef != nil:
			errorf("envFrom Secret %s: secrets go in files, named by RESUMER_*_FILE", ef.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.Value != nil:
			env[e.Name] = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			errorf("%s comes from a secretKeyRef: secrets go in files, named by %s_FILE", e.Name, e.Name)
		case e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			env[e.Name] = "(limits.memory)"
		default:
			errorf("%s: want a value (or GOMEMLIMIT from limits.memory)", e.Name)
		}
	}
	for _, err := range cfg.checkEnv(env) {
		errorf("%v", err)
	}
	roles, _ := cfg.parseRoles(cfg.value(env, "RESUMER_ROLES"))
	if _, ok := env["RESUMER_ROLES"]; !ok {
		errorf("RESUMER_ROLES is not set: each Deployment runs its own roles")
	}
	if opts.startup {
		for _, err := range cfg.checkStartup(roles, env) {
			errorf("%v", err)
		}
	}

	// Secrets: every *_FILE is a file of a mounted Secret volume.
	secretKeys := map[string][]string{}
	mounts := map[string]volume{} // mount path -> volume
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == vm.Name {
				mounts[vm.MountPath] = v
				if v.Secret != nil && !vm.ReadOnly {
					errorf("Secret volume %s is mounted read-write", v.Name)
				}
			}
		}
	}
	for _, k := range sortedKeys(env) {
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		file := env[k]
		v, ok := mounts[path.Dir(file)]
		if !ok || v.Secret == nil {
			errorf("%s=%s is not in a mounted Secret volume", k, file)
			continue
		}
		key := path.Base(file)
		if len(v.Secret.Items) > 0 {
			key = ""
			for _, it := range v.Secret.Items {
				if it.Path == path.Base(file) {
					key = it.Key
				}
			}
			if key == "" {
				errorf("%s=%s: the Secret volume %s projects no such file", k, file, v.Name)
				continue
			}
		}
		secretKeys[v.Secret.SecretName] = append(secretKeys[v.Secret.SecretName], key)
	}

	// Ports and probes: the admin listener serves /healthz and /readyz.
	admin, _ := strconv.Atoi(cfg.port(env, "RESUMER_ADMIN_ADDR"))
	http, _ := strconv.Atoi(cfg.port(env, "RESUMER_HTTP_ADDR"))
	if c.portNumber("admin") != admin {
		errorf("container port admin is %d, RESUMER_ADMIN_ADDR listens on %d", c.portNumber("admin"), admin)
	}
	public := slices.Contains(roles, "webhook") || slices.Contains(roles, "api")
	if got := c.portNumber("http"); public && got != http || !public && got != 0 {
		errorf("container port http is %d for roles %v (RESUMER_HTTP_ADDR listens on %d)", got, roles, http)
	}
	for _, p := range []struct {
		kind     string
		probe    *probe
		path     string
		optional bool
	}{
		{"startupProbe", c.StartupProbe, "/healthz", true},
		{"livenessProbe", c.LivenessProbe, "/healthz", false},
		{"readinessProbe", c.ReadinessProbe, "/readyz", false},
	} {
		if p.probe == nil {
			if !p.optional {
				errorf("no %s", p.kind)
			}
			continue
		}
		path := p.path
		if p.kind == "readinessProbe" && slices.Contains(roles, "webhook") {
			// Intake needs only NATS: a pod that takes Persona's webhooks stays in the Service
			// while Redis is away (/readyz/webhook), so deliveries are still stored.
			path = "/readyz/webhook"
		}
		if p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != path || c.portNumber(p.probe.HTTPGet.Port) != admin {
			errorf("%s: want GET %s on the admin port %d", p.kind, path, admin)
		}
		if p.kind == "readinessProbe" && p.probe.TimeoutSeconds < 3 {
			errorf("readinessProbe timeoutSeconds %d: /readyz takes up to 2 s to give up on NATS or Redis", p.probe.TimeoutSeconds)
		}
	}
	if a := tmpl.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(admin) || a["prometheus.io/path"] != "/metrics" {
		errorf("prometheus.io/{scrape,port,path} annotations do not point at %d/metrics", admin)
	}

	// Resources and security.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			errorf("want requests and limits for %s", r)
		}
	}
	if _, ok := env["GOMEMLIMIT"]; !ok {
		errorf("GOMEMLIMIT is not set from the memory limit")
	}
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" {
		errorf("pod securityContext: want runAsNonRoot, a non-zero runAsUser and seccompProfile RuntimeDefault")
	}
	csc := c.SecurityContext
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		(csc.Privileged != nil && *csc.Privileged) || (csc.RunAsUser != nil && *csc.RunAsUser == 0) ||
		csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
		errorf("container securityContext: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop [ALL], not privileged")
	}
	if pod.HostNetwork {
		errorf("hostNetwork")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		errorf("automountServiceAccountToken must be false: resumer does not use the Kubernetes API")
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		errorf("enableServiceLinks must be false: Services named resumer-* would inject RESUMER_* variables")
	}
	if pod.ServiceAccountName == "" || !serviceAccounts[pod.ServiceAccountName] {
		errorf("service account %q is not part of the set", pod.ServiceAccountName)
	}

	// Draining: the pod gets longer than resumer needs to drain.
	shutdown, err := time.ParseDuration(cfg.value(env, "RESUMER_SHUTDOWN_TIMEOUT"))
	if err != nil {
		errorf("RESUMER_SHUTDOWN_TIMEOUT: %v", err)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		shutdown += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		errorf("terminationGracePeriodSeconds must exceed RESUMER_SHUTDOWN_TIMEOUT plus the preStop sleep (%s)", shutdown)
	}
	return roles, secretKeys, env
}
