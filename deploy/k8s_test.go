package deploy

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

var (
	k8sBase    = filepath.Join("k8s", "base")
	k8sOverlay = filepath.Join("k8s", "overlays", "example")
)

// TestKubernetesBase checks the base on its own. It cannot start as it is (no Secret, no
// sender address): what serve needs at start-up is checked on the overlay.
func TestKubernetesBase(t *testing.T) {
	objs := loadKustomization(t, k8sBase)
	checkManifests(t, objs, manifestOptions{image: "resumer"})
}

// TestKubernetesOverlay checks the example overlay as kustomize would build it (emulated:
// resources, components, ConfigMap merges and images), including that every role has what
// it needs to start.
func TestKubernetesOverlay(t *testing.T) {
	objs := loadKustomization(t, k8sOverlay)
	checkManifests(t, objs, manifestOptions{pinned: true, startup: true, complete: true})
}

// natsValues is what the tests read of the NATS chart's values (k8s/values/nats.yaml).
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `yaml:"enabled"`
			Replicas int  `yaml:"replicas"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled bool `yaml:"enabled"`
				PVC     struct {
					Enabled bool `yaml:"enabled"`
				} `yaml:"pvc"`
			} `yaml:"fileStore"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"jetstream"`
	} `yaml:"config"`
}

// readNATSValues reads k8s/values/nats.yaml.
func readNATSValues(t *testing.T) natsValues {
	t.Helper()
	var v natsValues
	readYAML(t, natsValuesPath, &v)
	return v
}

// natsValuesPath is the NATS chart's values file.
var natsValuesPath = filepath.Join("k8s", "values", "nats.yaml")

// TestKubernetesNATSValues checks the durability the NATS chart's values choose: three
// clustered JetStream servers (R3 streams need them) storing to files on persistent volumes,
// each fsyncing at least every second (sync_interval under config.jetstream.merge; the
// chart's default leaves nats-server's two minutes).
func TestKubernetesNATSValues(t *testing.T) {
	path := natsValuesPath
	c := readNATSValues(t).Config
	if !c.Cluster.Enabled || c.Cluster.Replicas < 3 {
		t.Errorf("%s: cluster enabled %t with %d replicas; want a cluster of 3 (R3 streams)", path, c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		t.Errorf("%s: want JetStream with file storage on a persistent volume: %+v", path, c.JetStream)
	}
	switch s, ok := c.JetStream.Merge["sync_interval"]; {
	case !ok:
		t.Errorf("%s: config.jetstream.merge sets no sync_interval, so the servers keep nats-server's default of 2m", path)
	case !syncWithin(fmt.Sprint(s), time.Second):
		t.Errorf("%s: sync_interval %v; want always or at most 1s", path, s)
	}
}

// TestKubernetesRendered runs the real `kubectl kustomize` on the overlay, when kubectl is
// installed, and checks its output the same way.
func TestKubernetesRendered(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the overlay is checked through TestKubernetesOverlay's emulation only")
	}
	t.Parallel()
	for _, dir := range []string{k8sBase, k8sOverlay} {
		out, err := exec.Command(kubectl, "kustomize", dir).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr)
		}
		objs, err := parseManifests(out, "kubectl kustomize "+dir)
		if err != nil {
			t.Fatal(err)
		}
		if dir == k8sBase {
			checkManifests(t, objs, manifestOptions{image: "resumer"})
			continue
		}
		checkManifests(t, objs, manifestOptions{pinned: true, startup: true, complete: true})
		for _, o := range objs {
			if o.Kind != "Namespace" && o.Metadata.Namespace != "resumer" {
				t.Errorf("%s: namespace %q, want the overlay's", o, o.Metadata.Namespace)
			}
		}
	}
}

type manifestOptions struct {
	image    string // the image every container must have; "" with pinned
	pinned   bool   // images must have a version tag
	startup  bool   // check that serve has the settings it needs to start
	complete bool   // the Secret and the ServiceMonitor are part of the set
}

// checkManifests checks a set of objects that is deployed together.
func checkManifests(t *testing.T, objs []k8sObject, opts manifestOptions) {
	t.Helper()
	cfg := config(t)
	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	configMaps := map[string]map[string]string{}
	for _, o := range byKind["ConfigMap"] {
		configMaps[o.Metadata.Name] = o.data
	}
	serviceAccounts := map[string]bool{}
	for _, o := range byKind["ServiceAccount"] {
		serviceAccounts[o.Metadata.Name] = true
	}

	deps := map[string]deployment{}
	secretKeys := map[string][]string{} // Secret name -> keys the pods read
	roleOwner := map[string]string{}
	envs := map[string]map[string]string{}
	for _, o := range byKind["Deployment"] {
		var d deployment
		o.decode(t, &d)
		deps[d.Metadata.Name] = d
		roles, keys, env := checkDeployment(t, cfg, d, configMaps, serviceAccounts, opts)
		envs[d.Metadata.Name] = env
		for name, ks := range keys {
			secretKeys[name] = append(secretKeys[name], ks...)
		}
		for _, r := range roles {
			if other, dup := roleOwner[r]; dup {
				t.Errorf("role %s runs in both %s and %s", r, other, d.Metadata.Name)
			}
			roleOwner[r] = d.Metadata.Name
		}
	}
	for _, r := range slices.Concat(cfg.roles, sortedKeys(pendingRoles)) {
		if _, ok := roleOwner[r]; !ok {
			t.Errorf("no Deployment runs role %s", r)
		}
	}
	if roleOwner["webhook"] != "resumer-web" || roleOwner["worker"] != "resumer-worker" {
		t.Errorf("webhook runs in %q and worker in %q, want resumer-web and resumer-worker", roleOwner["webhook"], roleOwner["worker"])
	}
	for _, err := range cfg.checkShared(envs) {
		t.Error(err)
	}

	// selected returns the Deployments whose pods sel selects.
	selected := func(sel labelSelector) []deployment {
		var ds []deployment
		for _, name := range sortedKeys(deps) {
			if sel.matches(deps[name].Spec.Template.Metadata.Labels) {
				ds = append(ds, deps[name])
			}
		}
		return ds
	}

	services := map[string]service{}
	for _, o := range byKind["Service"] {
		var s service
		o.decode(t, &s)
		services[s.Metadata.Name] = s
		ds := selected(labelSelector{MatchLabels: s.Spec.Selector})
		if len(ds) == 0 {
			t.Errorf("%s selects no Deployment's pods", o)
		}
		for _, p := range s.Spec.Ports {
			for _, d := range ds {
				if resumerContainer(d).portNumber(p.TargetPort) == 0 {
					t.Errorf("%s: port %s targets %q, which %s's container does not have", o, p.Name, p.TargetPort, d.Metadata.Name)
				}
			}
		}
	}
	if s, ok := services["resumer-web"]; !ok || !slices.ContainsFunc(s.Spec.Ports, func(p servicePort) bool { return p.TargetPort == "http" }) {
		t.Errorf("no Service resumer-web in front of the public listener")
	}

	hpaFor := map[string]int{}
	for _, o := range byKind["HorizontalPodAutoscaler"] {
		var h hpa
		o.decode(t, &h)
		target := h.Spec.ScaleTargetRef
		d, ok := deps[target.Name]
		if target.Kind != "Deployment" || !ok {
			t.Errorf("%s scales %s %s, which is not here", o, target.Kind, target.Name)
			continue
		}
		hpaFor[target.Name]++
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("%s: want minReplicas >= 2 (one pod may be disrupted) and maxReplicas >= minReplicas", o)
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although %s owns the count: every apply would reset it", target.Name, o)
		}
	}
	pdbFor := map[string]int{}
	for _, o := range byKind["PodDisruptionBudget"] {
		var p pdb
		o.decode(t, &p)
		ds := selected(p.Spec.Selector)
		if len(ds) != 1 {
			t.Errorf("%s selects %d Deployments, want one", o, len(ds))
		}
		for _, d := range ds {
			pdbFor[d.Metadata.Name]++
		}
		if (p.Spec.MaxUnavailable == nil) == (p.Spec.MinAvailable == nil) {
			t.Errorf("%s: want exactly one of maxUnavailable and minAvailable", o)
		}
	}
	policyFor := map[string]int{}
	adminPort := strconv.Itoa(cfgPort(cfg, "RESUMER_ADMIN_ADDR"))
	for _, o := range byKind["NetworkPolicy"] {
		var np networkPolicy
		o.decode(t, &np)
		ds := selected(np.Spec.PodSelector)
		if len(ds) == 0 {
			t.Errorf("%s selects no pods", o)
		}
		for _, d := range ds {
			policyFor[d.Metadata.Name]++
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				for _, d := range ds {
					c := resumerContainer(d)
					n := c.portNumber(p.Port)
					if n == 0 {
						t.Errorf("%s: port %q is not a port of %s", o, p.Port, d.Metadata.Name)
					}
					if strconv.Itoa(n) == adminPort && len(rule.From) == 0 {
						t.Errorf("%s opens the admin listener (/metrics) to everyone", o)
					}
				}
			}
		}
	}
	for name := range deps {
		if hpaFor[name] != 1 || pdbFor[name] != 1 || policyFor[name] != 1 {
			t.Errorf("Deployment %s has %d HorizontalPodAutoscalers, %d PodDisruptionBudgets, %d NetworkPolicies; want one each", name, hpaFor[name], pdbFor[name], policyFor[name])
		}
	}

	for _, o := range byKind["ServiceMonitor"] {
		checkServiceMonitor(t, o, services, deps)
	}
	for _, o := range byKind["Namespace"] {
		if o.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("%s: enforce the restricted Pod Security Standard, which resumer meets", o)
		}
	}
	secrets := map[string][]string{}
	for _, o := range byKind["Secret"] {
		var s struct {
			Data       map[string]string `yaml:"data"`
			StringData map[string]string `yaml:"stringData"`
		}
		o.decode(t, &s)
		secrets[o.Metadata.Name] = slices.Concat(sortedKeys(s.Data), sortedKeys(s.StringData))
	}
	if opts.complete {
		if len(byKind["ServiceMonitor"]) == 0 || len(byKind["PrometheusRule"]) == 0 {
			t.Errorf("no ServiceMonitor or PrometheusRule")
		}
		for name, keys := range secretKeys {
			have, ok := secrets[name]
			if !ok {
				t.Errorf("the pods read Secret %s, which is not part of the set", name)
			}
			for _, k := range keys {
				if !slices.Contains(have, k) {
					t.Errorf("Secret %s has no key %s, which the pods read", name, k)
				}
			}
		}
	}
}

// resumerContainer is the Deployment's container named resumer (or its first).
func resumerContainer(d deployment) container {
	cs := d.Spec.Template.Spec.Containers
	for _, c := range cs {
		if c.Name == "resumer" {
			return c
		}
	}
	if len(cs) > 0 {
		return cs[0]
	}
	return container{}
}

func cfgPort(cfg configTable, name string) int {
	n, _ := strconv.Atoi(cfg.port(nil, name))
	return n
}

// checkServiceMonitor checks that the monitor scrapes every resumer pod's admin listener as
// job="resumer" with the component label the rules and dashboard use.
func checkServiceMonitor(t *testing.T, o k8sObject, services map[string]service, deps map[string]deployment) {
	t.Helper()
	var sm serviceMonitor
	o.decode(t, &sm)
	var svc *service
	for name, s := range services {
		if sm.Spec.Selector.matches(s.Metadata.Labels) {
			if svc != nil {
				t.Errorf("%s selects more than one Service", o)
			}
			s := services[name]
			svc = &s
		}
	}
	if svc == nil {
		t.Errorf("%s selects no Service", o)
		return
	}
	if svc.Metadata.Labels[sm.Spec.JobLabel] != "resumer" {
		t.Errorf("%s: jobLabel %q gives job=%q, the rules and dashboard expect job=\"resumer\"", o, sm.Spec.JobLabel, svc.Metadata.Labels[sm.Spec.JobLabel])
	}
	for name, d := range deps {
		if !(labelSelector{MatchLabels: svc.Spec.Selector}).matches(d.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: Service %s does not reach %s's pods", o, svc.Metadata.Name, name)
		}
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("%s: want one endpoint", o)
	}
	ep := sm.Spec.Endpoints[0]
	var target string
	for _, p := range svc.Spec.Ports {
		if p.Name == ep.Port {
			target = p.TargetPort
		}
	}
	if target != "admin" || ep.Path != "/metrics" {
		t.Errorf("%s scrapes port %s (target %q) path %s, want the admin port's /metrics", o, ep.Port, target, ep.Path)
	}
	if !slices.ContainsFunc(ep.Relabelings, func(r relabeling) bool { return r.TargetLabel == "component" }) {
		t.Errorf("%s sets no component label", o)
	}
}
