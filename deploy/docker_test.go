package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// readDockerfile splits the Dockerfile into instructions, skipping comments and joining
// lines continued with a backslash.
func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ins []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		ins = append(ins, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ins
}

var fromStage = regexp.MustCompile(`^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$`)

func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t)
	cfg := config(t)
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	var buildCmd string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildCmd = in.args
		}
	}
	env := strings.Join(slices.Collect(func(yield func(string) bool) {
		for _, in := range build {
			if in.cmd == "ENV" && !yield(in.args) {
				return
			}
		}
	}), " ")
	switch {
	case buildCmd == "":
		t.Error("the build stage runs no go build")
	case !strings.Contains(buildCmd+" "+env, "CGO_ENABLED=0"):
		t.Error("go build without CGO_ENABLED=0: the binary would not be static")
	case !strings.Contains(buildCmd, "-X main.version=${VERSION}"):
		t.Error("go build does not stamp the version (-X main.version=${VERSION})")
	case !strings.Contains(buildCmd, "./cmd/resumer"):
		t.Error("go build does not build ./cmd/resumer")
	}
	if !slices.ContainsFunc(build, func(in instruction) bool { return in.cmd == "ARG" && strings.HasPrefix(in.args, "VERSION") }) {
		t.Error("the build stage has no ARG VERSION")
	}
	main, err := os.ReadFile(filepath.Join(repoRoot(t), "cmd", "resumer", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^var version = `).Match(main) {
		t.Error("cmd/resumer/main.go has no `var version`, which -X main.version sets")
	}

	m := fromStage.FindStringSubmatch(final[0].args)
	if m == nil {
		t.Fatalf("FROM %s: cannot parse", final[0].args)
	}
	if base := m[1]; base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("runtime base %s: want distroless static or scratch", base)
	}
	var user, entrypoint string
	var exposed []string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "RUN":
			t.Errorf("RUN in the runtime stage (%s): there is no shell in it", in.args)
		}
	}
	for _, in := range ins {
		if in.cmd == "HEALTHCHECK" {
			t.Error("HEALTHCHECK: the image has no shell or curl, and orchestrators probe /healthz and /readyz")
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root UID, which Kubernetes' runAsNonRoot can verify", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || len(ep) == 0 {
		t.Errorf("ENTRYPOINT %s: want the exec (JSON) form", entrypoint)
	}
	for _, p := range []string{cfg.port(nil, "RESUMER_HTTP_ADDR"), cfg.port(nil, "RESUMER_ADMIN_ADDR")} {
		if !slices.Contains(exposed, p) {
			t.Errorf("port %s is not exposed", p)
		}
	}
}

// TestDockerignore checks that the build context leaves out the repository's history, local
// state and the binary, and keeps everything go build needs.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimPrefix(path.Clean(line), "/"))
		}
	}
	ignored := func(p string) bool {
		for _, pat := range patterns {
			for prefix := p; prefix != "." && prefix != "/"; prefix = path.Dir(prefix) {
				if ok, _ := path.Match(pat, prefix); ok {
					return true
				}
			}
		}
		return false
	}
	for _, p := range []string{".git", ".resumer", "resumer"} {
		if !ignored(p) {
			t.Errorf("%s is sent to the build", p)
		}
	}
	need := []string{"go.mod", "go.sum", "cmd/resumer/main.go"}
	root := repoRoot(t)
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && rel != ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && !strings.HasSuffix(p, "_test.go") && !strings.HasPrefix(rel, "deploy/") &&
			(strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".tmpl") || strings.HasSuffix(p, ".lua")) {
			need = append(need, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range need {
		if ignored(p) {
			t.Errorf("%s is left out of the build context but go build needs it", p)
		}
	}
}
