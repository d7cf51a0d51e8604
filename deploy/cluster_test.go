package deploy

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/resumer/resumer/internal/redisconn"
)

// clusterComposeService is a service of deploy/compose.cluster.yml: a composeService with
// its profiles.
type clusterComposeService struct {
	composeService `yaml:",inline"`
	Profiles       []string `yaml:"profiles"`
	Restart        string   `yaml:"restart"`
}

// TestComposeClusterProfile checks deploy/compose.cluster.yml as docker compose merges it
// onto docker-compose.yml: three routed JetStream servers, a Redis primary and replica under
// three Sentinels with quorum 2, all in the cluster profile, and resumer's services pointed at
// every one of them with settings that parse.
func TestComposeClusterProfile(t *testing.T) {
	base := readCompose(t)
	var over struct {
		Services map[string]clusterComposeService `yaml:"services"`
		Volumes  map[string]any                   `yaml:"volumes"`
	}
	readYAMLStrict(t, filepath.Join(repoRoot(t), "deploy", "compose.cluster.yml"), &over)
	cfg := config(t)
	exists := func(name string) bool {
		_, inBase := base.Services[name]
		_, inOver := over.Services[name]
		return inBase || inOver
	}
	var natsNodes, sentinels []string
	for _, name := range sortedKeys(over.Services) {
		s := over.Services[name]
		if _, inBase := base.Services[name]; inBase {
			continue // an override of a resumer service, checked below
		}
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", name, s.Restart)
		}
		if !slices.Equal(s.Profiles, []string{"cluster"}) {
			t.Errorf("%s: profiles %v, want [cluster]", name, s.Profiles)
		}
		checkImagePinned(t, s.Image)
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
			t.Errorf("%s: want an exec-form healthcheck", name)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				// A file of the repository (paths are relative to docker-compose.yml,
				// the first -f file).
				if _, err := os.Stat(filepath.Join(repoRoot(t), src)); err != nil {
					t.Errorf("%s: bind mount %s: %v", name, src, err)
				}
				continue
			}
			if over.Volumes == nil || !mapHas(over.Volumes, src) {
				t.Errorf("%s: volume %s is not declared", name, src)
			}
		}
		for dep := range s.DependsOn {
			if !exists(dep) {
				t.Errorf("%s: depends on %s, which does not exist", name, dep)
			}
		}
		switch {
		case strings.HasPrefix(name, "nats-"):
			natsNodes = append(natsNodes, name)
			if !slices.Contains(s.Command, "--jetstream") || flagValue(s.Command, "server_name") != name ||
				flagValue(s.Command, "cluster_name") != "resumer" {
				t.Errorf("%s: want --jetstream, --server_name %s and --cluster_name resumer: %v", name, name, s.Command)
			}
			checkDataVolume(t, name, s.composeService, flagValue(s.Command, "store_dir"))
			checkNATSSync(t, s.composeService)
		case strings.HasPrefix(name, "sentinel-"):
			sentinels = append(sentinels, name)
			script := strings.Join(s.Command, " ")
			if !strings.Contains(script, `sentinel monitor mymaster redis-primary 6379 2\n`) {
				t.Errorf("%s: does not monitor redis-primary as mymaster with quorum 2: %s", name, script)
			}
		case name == "redis-replica":
			if i := slices.Index(s.Command, "--replicaof"); i < 0 || i+2 >= len(s.Command) || s.Command[i+1] != "redis-primary" {
				t.Errorf("redis-replica does not replicate redis-primary: %v", s.Command)
			}
		}
		if strings.HasPrefix(name, "redis-") {
			if flagValue(s.Command, "appendonly") != "yes" || flagValue(s.Command, "maxmemory-policy") != "noeviction" {
				t.Errorf("%s: want AOF and noeviction: %v", name, s.Command)
			}
		}
	}
	if len(natsNodes) != 3 || len(sentinels) != 3 {
		t.Fatalf("%d NATS servers and %d Sentinels, want 3 of each", len(natsNodes), len(sentinels))
	}
	for _, n := range natsNodes {
		routes := strings.Split(flagValue(over.Services[n].Command, "routes"), ",")
		for _, other := range natsNodes {
			if !slices.Contains(routes, "nats://"+other+":6222") {
				t.Errorf("%s: routes %v lack %s", n, routes, other)
			}
		}
	}

	// resumer's services: merged environment valid and pointing at every node.
	envs := map[string]map[string]string{}
	for _, name := range []string{"resumer-web", "resumer-worker"} {
		o, ok := over.Services[name]
		if !ok {
			t.Errorf("%s is not pointed at the clusters", name)
			continue
		}
		env := maps.Clone(base.Services[name].Environment)
		maps.Copy(env, o.Environment)
		envs[name] = env
		for _, err := range cfg.checkEnv(env) {
			t.Errorf("%s: %v", name, err)
		}
		if env["RESUMER_STREAM_REPLICAS"] != "3" {
			t.Errorf("%s: RESUMER_STREAM_REPLICAS %q, want 3 (R3 streams)", name, env["RESUMER_STREAM_REPLICAS"])
		}
		var natsHosts []string
		for _, u := range strings.Split(env["RESUMER_NATS_URL"], ",") {
			host, _, _ := net.SplitHostPort(strings.TrimPrefix(u, "nats://"))
			natsHosts = append(natsHosts, host)
		}
		if slices.Sort(natsHosts); !slices.Equal(natsHosts, natsNodes) {
			t.Errorf("%s: RESUMER_NATS_URL names %v, want every server %v", name, natsHosts, natsNodes)
		}
		opts, mode, err := redisconn.Parse(env["RESUMER_REDIS_URL"])
		if err != nil || mode != redisconn.Sentinel || opts.MasterName != "mymaster" {
			t.Fatalf("%s: RESUMER_REDIS_URL: mode %s, %v; want Sentinel's mymaster", name, mode, err)
		}
		var hosts []string
		for _, a := range opts.Addrs {
			host, port, _ := net.SplitHostPort(a)
			if port != "26379" {
				t.Errorf("%s: sentinel %s not on 26379", name, a)
			}
			hosts = append(hosts, host)
		}
		if slices.Sort(hosts); !slices.Equal(hosts, sentinels) {
			t.Errorf("%s: RESUMER_REDIS_URL names sentinels %v, want %v", name, hosts, sentinels)
		}
		for _, dep := range append(slices.Clone(natsNodes), sentinels...) {
			if d, ok := o.DependsOn[dep]; !ok || d.Condition != "service_healthy" {
				t.Errorf("%s: does not wait for %s to be healthy", name, dep)
			}
		}
	}
	for _, err := range cfg.checkShared(envs) {
		t.Error(err)
	}
}

func mapHas(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// TestKubernetesHAOverlay checks overlays/ha like the example overlay, and that the Redis URL
// it puts in the Secret names the Sentinels and the primary the Redis chart's values set up.
func TestKubernetesHAOverlay(t *testing.T) {
	dir := filepath.Join("k8s", "overlays", "ha")
	objs := loadKustomization(t, dir)
	checkManifests(t, objs, manifestOptions{pinned: true, startup: true, complete: true})
	var k struct {
		Patches []struct {
			Target struct{ Kind, Name string } `yaml:"target"`
			Patch  string                      `yaml:"patch"`
		} `yaml:"patches"`
	}
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	var redisURL string
	for _, p := range k.Patches {
		if p.Target.Kind == "Secret" && p.Target.Name == "resumer-secrets" {
			if m := regexp.MustCompile(`(?m)path: /stringData/redis-url\s+value: (\S+)`).FindStringSubmatch(p.Patch); m != nil {
				redisURL = m[1]
			}
		}
	}
	opts, mode, err := redisconn.Parse(redisURL)
	if err != nil || mode != redisconn.Sentinel {
		t.Fatalf("overlays/ha redis-url %q: mode %s, %v; want a Sentinel URL", redisURL, mode, err)
	}
	if opts.SentinelPassword == "" || opts.Password == "" {
		t.Errorf("overlays/ha redis-url: want the data password and sentinel_password (the chart's auth.sentinel)")
	}

	var redisValues struct {
		Architecture string `yaml:"architecture"`
		Auth         struct {
			Enabled  bool `yaml:"enabled"`
			Sentinel bool `yaml:"sentinel"`
		} `yaml:"auth"`
		Sentinel struct {
			Enabled   bool   `yaml:"enabled"`
			MasterSet string `yaml:"masterSet"`
			Quorum    int    `yaml:"quorum"`
		} `yaml:"sentinel"`
		Replica struct {
			ReplicaCount int `yaml:"replicaCount"`
		} `yaml:"replica"`
		CommonConfiguration string `yaml:"commonConfiguration"`
	}
	readYAML(t, filepath.Join("k8s", "values", "redis-sentinel.yaml"), &redisValues)
	rv := redisValues
	if rv.Architecture != "replication" || !rv.Sentinel.Enabled || !rv.Auth.Enabled || !rv.Auth.Sentinel {
		t.Errorf("redis values: want architecture replication, sentinel and auth (sentinel too) enabled: %+v", rv)
	}
	if rv.Sentinel.MasterSet != opts.MasterName {
		t.Errorf("redis values: masterSet %q, the overlay's URL names %q", rv.Sentinel.MasterSet, opts.MasterName)
	}
	if n := rv.Replica.ReplicaCount; n < 3 || rv.Sentinel.Quorum <= n/2 || rv.Sentinel.Quorum > n {
		t.Errorf("redis values: %d nodes with quorum %d: want at least 3 and a majority", n, rv.Sentinel.Quorum)
	}
	for _, want := range []string{"appendonly yes", "maxmemory-policy noeviction"} {
		if !strings.Contains(rv.CommonConfiguration, want) {
			t.Errorf("redis values: commonConfiguration lacks %q", want)
		}
	}
	host, port, _ := net.SplitHostPort(opts.Addrs[0])
	if port != "26379" || !strings.HasPrefix(host, "redis.redis.svc") {
		t.Errorf("overlays/ha redis-url names %s, want the chart's Service redis.redis.svc...:26379", opts.Addrs[0])
	}

	nv := readNATSValues(t).Config
	if !nv.Cluster.Enabled || nv.Cluster.Replicas < 3 || !nv.JetStream.Enabled {
		t.Errorf("nats values: want a JetStream cluster of at least 3: %+v", nv)
	}
	var natsURL, replicas string
	for _, o := range objs {
		if o.Kind == "ConfigMap" && o.Metadata.Name == "resumer-config" {
			natsURL, replicas = o.data["RESUMER_NATS_URL"], o.data["RESUMER_STREAM_REPLICAS"]
		}
	}
	if natsURL != "nats://nats.nats.svc.cluster.local:4222" {
		t.Errorf("overlays/ha RESUMER_NATS_URL %q, want the chart's client Service", natsURL)
	}
	if replicas != fmt.Sprint(3) {
		t.Errorf("overlays/ha RESUMER_STREAM_REPLICAS %q, want 3", replicas)
	}
}

// TestShippedNATSConfigs loads the NATS configuration files the compose stacks mount with
// nats-server's own parser (the embedded server's version; the images run 2.11, and
// sync_interval needs 2.10 or later): each is a valid configuration, and it sets the
// sync_interval README "Durability" promises: always for the single server, 1s beside R3.
func TestShippedNATSConfigs(t *testing.T) {
	for _, tt := range []struct {
		file     string
		always   bool
		interval time.Duration
	}{
		{"nats.conf", true, 0},
		{"nats-cluster.conf", false, time.Second},
	} {
		t.Run(tt.file, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy", "nats", tt.file))
			if err != nil {
				t.Fatalf("nats-server refuses deploy/nats/%s: %v", tt.file, err)
			}
			if opts.SyncAlways != tt.always || (!tt.always && opts.SyncInterval != tt.interval) {
				t.Errorf("deploy/nats/%s: sync always %v, interval %v; want always %v, interval %v",
					tt.file, opts.SyncAlways, opts.SyncInterval, tt.always, tt.interval)
			}
		})
	}
}
