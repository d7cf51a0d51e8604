package deploy

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of the compose specification docker-compose.yml uses. Commands
// and health checks must be lists (exec form), environments maps: other forms fail to decode.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string                      `yaml:"image"`
	Build           *composeBuild               `yaml:"build"`
	Command         []string                    `yaml:"command"`
	Environment     map[string]string           `yaml:"environment"`
	Ports           []string                    `yaml:"ports"`
	Volumes         []string                    `yaml:"volumes"`
	DependsOn       map[string]composeDependsOn `yaml:"depends_on"`
	Healthcheck     *composeHealthcheck         `yaml:"healthcheck"`
	ReadOnly        bool                        `yaml:"read_only"`
	CapDrop         []string                    `yaml:"cap_drop"`
	SecurityOpt     []string                    `yaml:"security_opt"`
	StopGracePeriod string                      `yaml:"stop_grace_period"`
	Deploy          *struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

type composeBuild struct {
	Context string            `yaml:"context"`
	Args    map[string]string `yaml:"args"`
}

type composeDependsOn struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
	Disable     bool     `yaml:"disable"`
}

// composeServiceKeys are the service keys the checks know; any other key in
// docker-compose.yml is reported, so a misspelt key (helthcheck) does not go unnoticed.
var composeServiceKeys = []string{
	"<<", "image", "build", "command", "environment", "ports", "volumes", "depends_on",
	"healthcheck", "restart", "read_only", "cap_drop", "security_opt", "stop_grace_period",
	"deploy",
}

func composePath(t *testing.T) string { return filepath.Join(repoRoot(t), "docker-compose.yml") }

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, composePath(t), &c)
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

// browserURLs are the settings whose URLs a user's browser opens, not resumer itself.
var browserURLs = []string{"RESUMER_HOSTED_FLOW_URL", "RESUMER_PUBLIC_URL", "RESUMER_REDIRECT_URI"}

// publishes says whether some service publishes host port port.
func (c composeFile) publishes(port string) bool {
	for _, s := range c.Services {
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if len(parts) >= 2 && parts[len(parts)-2] == port {
				return true
			}
		}
	}
	return false
}

// resumerServices are the services that run the image built from this repository, sorted.
func (c composeFile) resumerServices() []string {
	var names []string
	for name, s := range c.Services {
		if s.Build != nil && s.Build.Context == "." {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// flagValue returns the value of --name in a command line (--name=v or --name v).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func TestComposeKeys(t *testing.T) {
	b, err := os.ReadFile(composePath(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]yaml.Node `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for name, n := range doc.Services {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !slices.Contains(composeServiceKeys, k) {
				t.Errorf("service %s: unknown key %q (a typo, or add it to composeServiceKeys and its check)", name, k)
			}
		}
	}
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	cfg := config(t)
	for _, want := range []string{"nats", "redis", "resumer-web", "resumer-worker", "persona-sim", "mailpit", "prometheus", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			switch {
			case s.Build != nil:
				if _, err := os.Stat(filepath.Join(repoRoot(t), s.Build.Context, "Dockerfile")); err != nil {
					t.Errorf("build context %q has no Dockerfile", s.Build.Context)
				}
				if s.Build.Args["VERSION"] == "" {
					t.Errorf("build passes no VERSION to stamp into the binary")
				}
			case s.Image == "":
				t.Errorf("neither image nor build")
			default:
				checkImagePinned(t, s.Image)
			}
			for _, p := range s.Ports {
				if !strings.HasPrefix(p, "127.0.0.1:") {
					t.Errorf("port %q is published on every interface; bind it to 127.0.0.1", p)
				}
			}
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if strings.HasPrefix(src, ".") {
					if _, err := os.Stat(filepath.Join(repoRoot(t), src)); err != nil {
						t.Errorf("bind mount %s: %v", src, err)
					}
				} else if _, ok := c.Volumes[src]; !ok {
					t.Errorf("volume %s is not declared under volumes:", src)
				}
			}
			for dep, d := range s.DependsOn {
				target, ok := c.Services[dep]
				if !ok {
					t.Errorf("depends on %s, which does not exist", dep)
					continue
				}
				if d.Condition == "service_healthy" && target.Healthcheck == nil {
					t.Errorf("waits for %s to be healthy, which has no healthcheck", dep)
				}
			}
			if hc := s.Healthcheck; hc != nil {
				if len(hc.Test) < 2 || hc.Test[0] != "CMD" {
					t.Errorf("healthcheck test %v: want [\"CMD\", ...] (exec form)", hc.Test)
				}
				for _, d := range []string{hc.Interval, hc.Timeout} {
					if _, err := time.ParseDuration(d); err != nil {
						t.Errorf("healthcheck: %v", err)
					}
				}
				if hc.Retries < 1 {
					t.Errorf("healthcheck retries %d", hc.Retries)
				}
			}
		})
	}

	// The infrastructure keeps its data on volumes and is checked for health.
	nats := c.Services["nats"]
	if !slices.Contains(nats.Command, "--jetstream") && !slices.Contains(nats.Command, "-js") {
		t.Errorf("nats runs without JetStream: %v", nats.Command)
	}
	checkDataVolume(t, "nats", nats, flagValue(nats.Command, "store_dir"))
	checkNATSSync(t, nats)
	redis := c.Services["redis"]
	if flagValue(redis.Command, "appendonly") != "yes" {
		t.Errorf("redis runs without AOF: %v", redis.Command)
	}
	if p := flagValue(redis.Command, "maxmemory-policy"); p != "" && p != "noeviction" {
		t.Errorf("redis maxmemory-policy %s would evict resumer's keys", p)
	}
	checkDataVolume(t, "redis", redis, "/data")
	for _, name := range []string{"nats", "redis", "mailpit", "prometheus", "grafana"} {
		if c.Services[name].Healthcheck == nil {
			t.Errorf("%s has no healthcheck", name)
		}
	}

	// The resumer services: one image, hardened, and between them every role once.
	roleOwner := map[string]string{}
	envs := map[string]map[string]string{}
	var image string
	for _, name := range c.resumerServices() {
		s := c.Services[name]
		if image == "" {
			image = s.Image
		} else if s.Image != image {
			t.Errorf("%s: image %s, the others %s: build one image", name, s.Image, image)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: want read_only, cap_drop [ALL] and no-new-privileges", name)
		}
		if s.Healthcheck != nil && !s.Healthcheck.Disable {
			t.Errorf("%s: the distroless image has nothing to run a healthcheck with; Prometheus and depends_on cover it", name)
		}
		if len(s.Command) == 0 {
			t.Errorf("%s: no command", name)
			continue
		}
		if s.Command[0] != "serve" {
			continue
		}
		for _, err := range cfg.checkEnv(s.Environment) {
			t.Errorf("%s: %v", name, err)
		}
		envs[name] = s.Environment
		roles, _ := cfg.parseRoles(cfg.value(s.Environment, "RESUMER_ROLES"))
		for _, r := range roles {
			if other, dup := roleOwner[r]; dup {
				t.Errorf("role %s runs in both %s and %s", r, other, name)
			}
			roleOwner[r] = name
		}
		for _, err := range cfg.checkStartup(roles, s.Environment) {
			t.Errorf("%s: %v", name, err)
		}
		grace, err := time.ParseDuration(s.StopGracePeriod)
		shutdown, err2 := time.ParseDuration(cfg.value(s.Environment, "RESUMER_SHUTDOWN_TIMEOUT"))
		if err != nil || err2 != nil || grace <= shutdown {
			t.Errorf("%s: stop_grace_period %q must exceed RESUMER_SHUTDOWN_TIMEOUT", name, s.StopGracePeriod)
		}
		http := cfg.port(s.Environment, "RESUMER_HTTP_ADDR")
		public := slices.Contains(roles, "webhook") || slices.Contains(roles, "api")
		published := slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+http) })
		if public != published {
			t.Errorf("%s: roles %v, http port %s published: %v", name, roles, http, published)
		}
		if s.Deploy == nil || s.Deploy.Replicas == nil {
			t.Errorf("%s: set deploy.replicas, so scaling it is one line", name)
		}
		// Every service a URL names is one this service waits for; a URL meant for the
		// user's browser names a port published on this machine.
		for _, k := range sortedKeys(s.Environment) {
			u, err := url.Parse(s.Environment[k])
			if err != nil || u.Host == "" {
				continue
			}
			host := u.Hostname()
			if slices.Contains(browserURLs, k) {
				if host != "localhost" && host != "127.0.0.1" || !c.publishes(u.Port()) {
					t.Errorf("%s: %s=%s is opened by a browser on this machine: want localhost and a published port", name, k, u)
				}
				continue
			}
			if _, ok := c.Services[host]; !ok {
				t.Errorf("%s: %s names host %s, which is no compose service", name, k, host)
			} else if _, ok := s.DependsOn[host]; !ok {
				t.Errorf("%s: %s names %s but the service does not depend on it", name, k, host)
			}
		}
		for _, dep := range []string{"nats", "redis"} {
			if d, ok := s.DependsOn[dep]; ok && d.Condition != "service_healthy" {
				t.Errorf("%s: wait for %s with condition service_healthy", name, dep)
			}
		}
	}
	for _, r := range slices.Concat(cfg.roles, sortedKeys(pendingRoles)) {
		if _, ok := roleOwner[r]; !ok {
			t.Errorf("no compose service runs role %s", r)
		}
	}
	for _, err := range cfg.checkShared(envs) {
		t.Error(err)
	}
	if roleOwner["webhook"] != "resumer-web" || roleOwner["worker"] != "resumer-worker" {
		t.Errorf("webhook runs in %q and worker in %q, want resumer-web and resumer-worker", roleOwner["webhook"], roleOwner["worker"])
	}
	checkComposeSimulator(t, c, roleOwner["webhook"])
	checkComposeGrafana(t, c)
}

// checkStartup reports what serve would refuse to start without, for the given roles: the
// defaults of the connection settings point at 127.0.0.1, which in a container or a pod is
// not where NATS or Redis are.
func (c configTable) checkStartup(roles []string, env map[string]string) []error {
	var errs []error
	has := func(name string) bool {
		_, v := env[name]
		_, f := env[name+"_FILE"]
		return v || f
	}
	need := func(name, why string) {
		if !has(name) {
			errs = append(errs, fmt.Errorf("%s is not set: %s", name, why))
		}
	}
	for _, r := range roles {
		switch r {
		case "webhook":
			need("RESUMER_WEBHOOK_SECRETS", "the webhook role refuses to start without it")
			need("RESUMER_NATS_URL", "its default is 127.0.0.1")
		case "worker":
			need("RESUMER_NATS_URL", "its default is 127.0.0.1")
			need("RESUMER_REDIS_URL", "its default is 127.0.0.1")
		case "api":
			need("RESUMER_REDIS_URL", "its default is 127.0.0.1")
			need("RESUMER_PERSONA_API_KEY", "the api role mints session tokens with it")
		case "notify":
			need("RESUMER_REDIS_URL", "its default is 127.0.0.1")
			if c.value(env, "RESUMER_LINK_MODE") != "redirect" {
				need("RESUMER_PERSONA_API_KEY", "reminder links other than redirect are minted with it")
			}
		}
		redirect := c.value(env, "RESUMER_LINK_MODE") == "redirect" || has("RESUMER_PUBLIC_URL") || has("RESUMER_LINK_SECRET")
		if (r == "api" || r == "notify") && redirect {
			need("RESUMER_PUBLIC_URL", "redirect links are configured")
			need("RESUMER_LINK_SECRET", "redirect links are configured")
		}
		if r == "notify" {
			for ch := range strings.SplitSeq(c.value(env, "RESUMER_CHANNELS"), ",") {
				switch strings.TrimSpace(ch) {
				case "email":
					need("RESUMER_SMTP_URL", "the email channel needs it")
					need("RESUMER_MAIL_FROM", "the email channel needs it")
				case "webhook":
					need("RESUMER_NOTIFY_WEBHOOK_URL", "the webhook channel needs it")
					need("RESUMER_NOTIFY_WEBHOOK_SECRET", "the webhook channel needs it")
				}
			}
		}
	}
	return errs
}

// checkComposeSimulator checks that the Persona simulator and resumer agree: the simulator
// signs with the receiver's secret and delivers to it, and resumer calls the simulator with
// the key it accepts.
func checkComposeSimulator(t *testing.T, c composeFile, receiver string) {
	t.Helper()
	sim, ok := c.Services["persona-sim"]
	if !ok || len(sim.Command) == 0 || sim.Command[0] != "persona-sim" {
		t.Errorf("persona-sim does not run `resumer persona-sim`")
		return
	}
	web := c.Services[receiver]
	if got, want := flagValue(sim.Command, "webhook-secret"), web.Environment["RESUMER_WEBHOOK_SECRETS"]; got == "" || got != want {
		t.Errorf("persona-sim signs with %q, %s verifies with %q", got, receiver, want)
	}
	hook, err := url.Parse(flagValue(sim.Command, "webhook-url"))
	if err != nil || hook.Hostname() != receiver || hook.Port() != config(t).port(web.Environment, "RESUMER_HTTP_ADDR") || hook.Path != "/webhooks/persona" {
		t.Errorf("persona-sim delivers to %q, want http://%s:<http port>/webhooks/persona", flagValue(sim.Command, "webhook-url"), receiver)
	}
	_, simPort, _ := strings.Cut(flagValue(sim.Command, "addr"), ":")
	lits := metrics(t).literals
	for _, name := range c.resumerServices() {
		env := c.Services[name].Environment
		api, ok := env["RESUMER_PERSONA_API_URL"]
		if !ok {
			continue
		}
		u, err := url.Parse(api)
		if err != nil || u.Hostname() != "persona-sim" || u.Port() != simPort {
			t.Errorf("%s: RESUMER_PERSONA_API_URL=%s, the simulator listens on persona-sim:%s", name, api, simPort)
		}
		if key := env["RESUMER_PERSONA_API_KEY"]; !lits[key] {
			t.Errorf("%s: RESUMER_PERSONA_API_KEY=%q is not the simulator's default key", name, key)
		}
	}
}

// checkComposeGrafana checks that Grafana gets its provisioning and the dashboard.
func checkComposeGrafana(t *testing.T, c composeFile) {
	t.Helper()
	g := c.Services["grafana"]
	mounted := map[string]string{} // container path -> repository path
	for _, v := range g.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], ".") {
			mounted[parts[1]] = filepath.Clean(parts[0])
		}
	}
	if mounted["/etc/grafana/provisioning"] != filepath.Join("deploy", "grafana", "provisioning") {
		t.Errorf("grafana does not mount deploy/grafana/provisioning at /etc/grafana/provisioning")
	}
	home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	if mounted[home] != filepath.Join("deploy", "grafana", "resumer.json") {
		t.Errorf("the home dashboard %s is not deploy/grafana/resumer.json", home)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join("grafana", "provisioning", "dashboards", "resumer.yml"), &prov)
	if len(prov.Providers) != 1 || filepath.Dir(home) != prov.Providers[0].Options.Path {
		t.Errorf("the dashboard provider does not load %s", filepath.Dir(home))
	}
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join("grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("want one prometheus data source, got %+v", ds.Datasources)
	}
	if u, err := url.Parse(ds.Datasources[0].URL); err != nil || u.Hostname() != "prometheus" {
		t.Errorf("data source URL %s is not the prometheus service", ds.Datasources[0].URL)
	}
}

func checkDataVolume(t *testing.T, name string, s composeService, dir string) {
	t.Helper()
	if dir == "" {
		t.Errorf("%s: no data directory", name)
		return
	}
	if !slices.ContainsFunc(s.Volumes, func(v string) bool {
		src, dst, _ := strings.Cut(v, ":")
		return !strings.HasPrefix(src, ".") && (dst == dir || strings.HasPrefix(dst, dir+":"))
	}) {
		t.Errorf("%s: no named volume on %s", name, dir)
	}
}

// checkImagePinned fails for an image without a tag or digest, or tagged latest.
func checkImagePinned(t *testing.T, image string) {
	t.Helper()
	if strings.Contains(image, "@sha256:") {
		return
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		t.Errorf("image %s has no tag", image)
		return
	}
	if tag := image[i+1:]; tag == "latest" || tag == "" {
		t.Errorf("image %s: pin a version", image)
	}
}

// checkNATSSync fails unless the NATS server s fsyncs JetStream before every PubAck, or at
// least every second (sync_interval in its --config file): with one replica, nats-server's
// default of two minutes can lose acknowledged events to an OS crash, and with three, the OS
// crash of two servers at once.
func checkNATSSync(t *testing.T, s composeService) {
	t.Helper()
	conf := flagValue(s.Command, "config")
	if conf == "" {
		t.Errorf("nats: no --config file, so sync_interval is nats-server's default of 2m")
		return
	}
	var host string
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == conf && strings.HasPrefix(parts[0], ".") {
			host = parts[0]
		}
	}
	if host == "" {
		t.Errorf("nats: --config %s is not mounted from the repository", conf)
		return
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), host))
	if err != nil {
		t.Fatalf("nats config: %v", err)
	}
	m := regexp.MustCompile(`(?m)^\s*sync_interval\s*[:=]\s*"?([^"\s#]+)`).FindSubmatch(b)
	if m == nil {
		t.Errorf("nats: %s sets no sync_interval (nats-server's default is 2m)", host)
		return
	}
	if v := string(m[1]); !syncWithin(v, time.Second) {
		t.Errorf("nats: sync_interval %s in %s; want always or at most 1s", v, host)
	}
}

// syncWithin reports whether the nats-server sync_interval v is "always" or a duration of at
// most limit; anything else (unparsable, longer, zero or negative) is false.
func syncWithin(v string, limit time.Duration) bool {
	if v == "always" {
		return true
	}
	d, err := time.ParseDuration(v)
	return err == nil && d > 0 && d <= limit
}
