package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	goversion "go/version"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	kyaml "sigs.k8s.io/yaml"
)

// The deployment files (Dockerfile, docs/deploy/) cannot run here: there is
// no Docker engine, no cluster and no systemd to start ficus. These tests
// check them offline with the parsers the real tools use, and check that
// what they say fits ficus: every command they run exists with its flags,
// every config they mount loads with ficus's own config package (the
// mounts simulated in a temporary directory), every secret reference in it
// is provided where the config says.

const repoRoot = "../.."

// parseDockerfile parses the repository's Dockerfile with BuildKit's
// frontend (the parser and instruction checks of docker build) and fails
// on any of its lint warnings (docker build --check).
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ast, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range ast.Warnings {
		t.Errorf("Dockerfile: parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("Dockerfile:%v: %s: %s", loc, rule, msg)
	}})
	stages, _, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// imageTag splits an image reference into its name and tag, failing the
// test when the tag is missing or latest (base images are pinned).
func imageTag(t *testing.T, ref string) (name, tag string) {
	t.Helper()
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		t.Fatalf("image %s has no tag", ref)
	}
	if name, tag = ref[:i], ref[i+1:]; tag == "latest" || tag == "" {
		t.Fatalf("image %s is not pinned", ref)
	}
	return name, tag
}

// numericUser reports whether u is UID[:GID], both numeric and not root.
func numericUser(u string) bool {
	for _, p := range strings.Split(u, ":") {
		if n, err := strconv.Atoi(p); err != nil || n == 0 {
			return false
		}
	}
	return true
}

// dockerContext copies the files of the repository that .dockerignore lets
// into a build context (decided by Docker's own pattern matcher) to a
// temporary directory, and returns it.
func dockerContext(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == repoRoot {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, p)
		if skip, err := pm.MatchesOrParentMatches(rel); err != nil || skip {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// Issue 14: the Dockerfile is parsed and linted by BuildKit's frontend;
// its build stage runs `make static` on a pinned Go image no older than
// go.mod's go line; its final stage is distroless/static or scratch with a
// numeric non-root user, no RUN (no shell there), the binary as exec-form
// entrypoint and a default command that exists. Then the build step is
// reproduced: the files .dockerignore lets into the context are copied
// alone, `make static` runs there as in the image, and the result is a
// static ELF (no program interpreter, no shared library) that runs.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and the final image", len(stages))
	}
	build, final := stages[0], stages[1]

	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		t.Fatal(err)
	}
	name, tag := imageTag(t, build.BaseName)
	goVer, _, _ := strings.Cut(tag, "-")
	if name != "golang" || !goversion.IsValid("go"+goVer) || goversion.Compare("go"+goVer, "go"+mf.Go.Version) < 0 {
		t.Fatalf("build stage FROM %s: want golang:<version ≥ go.mod's %s>", build.BaseName, mf.Go.Version)
	}
	var makeLine string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "make static") {
			makeLine = strings.Join(r.CmdLine, " ")
		}
	}
	m := regexp.MustCompile(`make static STATIC_BIN=(\S+)`).FindStringSubmatch(makeLine)
	if m == nil {
		t.Fatalf("the build stage does not run `make static STATIC_BIN=…`: %q", makeLine)
	}
	built := m[1]

	name, _ = imageTag(t, final.BaseName)
	if name != "gcr.io/distroless/static-debian12" && name != "gcr.io/distroless/static-debian13" && final.BaseName != "scratch" {
		t.Fatalf("final stage FROM %s: want distroless/static or scratch", final.BaseName)
	}
	var user, entry string
	var cmd []string
	var exposed []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			t.Fatalf("final stage runs %q: the image has no shell", c.CmdLine)
		case *instructions.CopyCommand:
			if c.From != build.Name || len(c.SourcePaths) != 1 || c.SourcePaths[0] != built {
				t.Fatalf("final stage copies %v from %q, want %s from %s", c.SourcePaths, c.From, built, build.Name)
			}
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			if c.PrependShell || len(c.CmdLine) != 1 {
				t.Fatalf("ENTRYPOINT %q: want the exec form, the binary alone", c.CmdLine)
			}
			entry = c.CmdLine[0]
		case *instructions.CmdCommand:
			if c.PrependShell {
				t.Fatalf("CMD %q: want the exec form", c.CmdLine)
			}
			cmd = c.CmdLine
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		}
	}
	if !numericUser(user) {
		t.Fatalf("USER %q: want a numeric non-root UID:GID", user)
	}
	if entry == "" || !filepath.IsAbs(entry) {
		t.Fatalf("ENTRYPOINT %q", entry)
	}
	root := newRoot(io.Discard, io.Discard)
	if why := checkCommand(root, strings.Join(cmd, " ")); why != "" {
		t.Fatalf("CMD %q: %s", cmd, why)
	}
	if !slices.Equal(exposed, []string{"8080", "9090"}) {
		t.Fatalf("EXPOSE %v", exposed)
	}

	ctxDir := dockerContext(t)
	for _, p := range []string{".git", "bin", ".ci"} {
		if _, err := os.Stat(filepath.Join(ctxDir, p)); err == nil {
			t.Errorf("%s is in the build context", p)
		}
	}
	out := filepath.Join(t.TempDir(), "ficus")
	mk := exec.Command("make", "static", "STATIC_BIN="+out, "VERSION=test")
	mk.Dir = ctxDir
	mk.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	if b, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make static in the build context: %v\n%s", err, b)
	}
	ef, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary has a program interpreter: it is not static")
		}
	}
	if libs, err := ef.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Fatalf("the binary needs shared libraries %v (%v)", libs, err)
	}
	if b, err := exec.Command(out, "version").Output(); err != nil || string(b) != "ficus test\n" {
		t.Fatalf("ficus version: %q %v", b, err)
	}
}

// mountedConfig loads a process config as ficus serve would inside a
// container: mounts maps each container path to the host directory that
// stands for it (references and file names under it are rewritten), and
// env is the container's environment. Load resolves every secret for
// serve, so a reference nothing provides fails.
func mountedConfig(t *testing.T, text string, mounts map[string]string, env map[string]string) (*config.Config, error) {
	t.Helper()
	targets := make([]string, 0, len(mounts))
	for k := range mounts {
		targets = append(targets, k)
	}
	// Longest first: /etc/ficus-secrets before /etc/ficus.
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
	for _, k := range targets {
		text = regexp.MustCompile(regexp.QuoteMeta(k)+`(/|\b)`).ReplaceAllString(text, mounts[k]+"$1")
	}
	for _, ref := range regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(text, -1) {
		if _, ok := env[ref[1]]; !ok {
			t.Setenv(ref[1], "") // unset for this test: Load must refuse it
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	p := filepath.Join(t.TempDir(), "ficus.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(p, config.ForServe)
	return cfg, err
}

// checkArgs checks that a command line a deployment file runs exists in
// ficus with its flags and names the config file want.
func checkArgs(t *testing.T, where string, args []string, wantConfig string) {
	t.Helper()
	if why := checkCommand(newRoot(io.Discard, io.Discard), strings.Join(args, " ")); why != "" {
		t.Errorf("%s: `ficus %s`: %s", where, strings.Join(args, " "), why)
	}
	if i := slices.Index(args, "--config"); i < 0 || i+1 >= len(args) || args[i+1] != wantConfig {
		t.Errorf("%s: `ficus %s` does not read %s", where, strings.Join(args, " "), wantConfig)
	}
}

// composeFile is the part of the Compose specification that
// docs/deploy/compose.yaml may use; decoding refuses anything else.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]struct{}       `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	SecurityOpt []string          `yaml:"security_opt"`
	StopGrace   string            `yaml:"stop_grace_period"`
	Restart     string            `yaml:"restart"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// Issue 14: docs/deploy/compose.yaml decodes into the Compose fields it
// may use (unknown fields refused); ficus and PostgreSQL have health
// checks, the schema is migrated before ficus starts, each ficus command it
// runs exists, ficus runs read-only without capabilities, and the config it
// mounts loads for serve with the environment the file gives it, its rule
// file included.
func TestComposeFile(t *testing.T) {
	dir := filepath.Join(repoRoot, "docs", "deploy")
	b, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	pg, ok := cf.Services["postgres"]
	if !ok || pg.Healthcheck == nil || !slices.Contains(pg.Healthcheck.Test, "pg_isready") {
		t.Fatalf("postgres service with a pg_isready health check: %+v", pg)
	}
	imageTag(t, pg.Image)
	migrate, fc := cf.Services["migrate"], cf.Services["ficus"]
	if migrate.Build == nil || filepath.Clean(filepath.Join(dir, migrate.Build.Context)) != filepath.Clean(repoRoot) || migrate.Build.Dockerfile != "Dockerfile" {
		t.Fatalf("migrate builds %+v, want the repository's Dockerfile", migrate.Build)
	}
	if migrate.Image != fc.Image || fc.Image == "" {
		t.Fatalf("ficus runs %q, migrate builds %q", fc.Image, migrate.Image)
	}
	if migrate.DependsOn["postgres"].Condition != "service_healthy" || fc.DependsOn["migrate"].Condition != "service_completed_successfully" {
		t.Fatalf("start order: migrate after a healthy postgres, ficus after migrate: %+v %+v", migrate.DependsOn, fc.DependsOn)
	}
	for name, s := range cf.Services {
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
		}
	}
	if fc.Healthcheck == nil || len(fc.Healthcheck.Test) < 2 || fc.Healthcheck.Test[0] != "CMD" || fc.Healthcheck.Test[1] != "/ficus" {
		t.Fatalf("ficus health check %+v: want [CMD /ficus healthcheck …] (the image has no shell)", fc.Healthcheck)
	}
	for _, s := range []composeService{migrate, fc} {
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%v: want read_only, cap_drop ALL, no-new-privileges", s.Command)
		}
	}
	checkArgs(t, "migrate", migrate.Command, "/etc/ficus/ficus.yaml")
	checkArgs(t, "ficus", fc.Command, "/etc/ficus/ficus.yaml")
	checkArgs(t, "ficus health check", fc.Healthcheck.Test[2:], "/etc/ficus/ficus.yaml")
	if fc.Healthcheck.Test[2] != "healthcheck" {
		t.Fatalf("health check runs %v", fc.Healthcheck.Test[2:])
	}

	mounts := map[string]string{}
	for _, v := range fc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) != 3 || parts[2] != "ro" {
			t.Fatalf("ficus volume %q: want a read-only bind mount", v)
		}
		abs, err := filepath.Abs(filepath.Join(dir, parts[0]))
		if err != nil {
			t.Fatal(err)
		}
		mounts[parts[1]] = abs
	}
	cfgText, err := os.ReadFile(filepath.Join(mounts["/etc/ficus"], "ficus.yaml"))
	if err != nil {
		t.Fatalf("the config ficus reads: %v", err)
	}
	cfg, err := mountedConfig(t, string(cfgText), mounts, fc.Environment)
	if err != nil {
		t.Fatalf("the compose config does not load for serve:\n%v", err)
	}
	if !maps.Equal(fc.Environment, migrate.Environment) {
		t.Errorf("migrate and ficus see different environments")
	}
	// The published ports are the config's listeners.
	var published []string
	for _, p := range fc.Ports {
		published = append(published, p[strings.LastIndexByte(p, ':')+1:])
	}
	_, port, _ := strings.Cut(cfg.Listen.Addr, ":")
	_, opsPort, _ := strings.Cut(cfg.Listen.OpsAddr, ":")
	if !slices.Equal(published, []string{port, opsPort}) {
		t.Errorf("compose publishes %v, ficus listens on %s and %s", published, port, opsPort)
	}
	if d, err := time.ParseDuration(fc.StopGrace); err != nil || d <= cfg.ShutdownTimeout.Std(0) {
		t.Errorf("stop_grace_period %q must exceed shutdown_timeout %v", fc.StopGrace, cfg.ShutdownTimeout.Std(0))
	}
}

// Issue 14: ficus healthcheck, the health check of an image without a
// shell, exits 0 while the ops listener of its config answers 200 on
// /readyz (a wildcard ops_addr is asked on loopback) and 1 when nothing
// answers or the path is not 200.
func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	opsPort := freePort(t)
	text := fmt.Sprintf("listen: {addr: \"127.0.0.1:0\", ops_addr: \"0.0.0.0:%d\"}\nroutes: {file: %s}\nidp: {enabled: false}\nlog: {level: warn, access_log: false}\n",
		opsPort, routeFile(t, "http://127.0.0.1:1"))
	cfg := filepath.Join(t.TempDir(), "ficus.yaml")
	os.WriteFile(cfg, []byte(text), 0o600)
	if code, _, errs := runCLI(t, "healthcheck", "--config", cfg, "--timeout", "2s"); code != 1 || !strings.Contains(errs, "connection refused") {
		t.Fatalf("nothing listening: %d %s", code, errs)
	}
	_, _, stop := testServer(t, text)
	if code, out, errs := runCLI(t, "healthcheck", "--config", cfg); code != 0 || out != fmt.Sprintf("http://127.0.0.1:%d/readyz: 200 ready\n", opsPort) {
		t.Fatalf("serving: %d %q %s", code, out, errs)
	}
	if code, _, _ := runCLI(t, "healthcheck", "-c", cfg, "--path", "/healthz"); code != 0 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _, errs := runCLI(t, "healthcheck", "-c", cfg, "--path", "/nope"); code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("/nope: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "healthcheck", "-c", cfg, "--path", "readyz"); code != 1 || !strings.Contains(errs, "--path must start with /") {
		t.Fatalf("bad path: %d %s", code, errs)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, "healthcheck", "-c", cfg); code != 1 {
		t.Fatalf("stopped: %d", code)
	}
}

// kubeObjects are the Kubernetes manifests of docs/deploy/kubernetes, each
// decoded strictly into its k8s.io/api type.
type kubeObjects struct {
	configMaps  map[string]*corev1.ConfigMap
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	jobs        map[string]*batchv1.Job
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	netpols     []*networkingv1.NetworkPolicy
}

// decodeKube reads every document of every .yaml file in dir into the
// Kubernetes API type of its apiVersion and kind, refusing unknown fields
// (sigs.k8s.io/yaml strict: as kubectl apply --validate=strict).
func decodeKube(t *testing.T, dir string) kubeObjects {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	k := kubeObjects{configMaps: map[string]*corev1.ConfigMap{}, deployments: map[string]*appsv1.Deployment{},
		services: map[string]*corev1.Service{}, jobs: map[string]*batchv1.Job{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", filepath.Base(f), i+1)
			var tm metav1.TypeMeta
			if err := kyaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.GroupVersionKind() {
			case corev1.SchemeGroupVersion.WithKind("ConfigMap"):
				obj = &corev1.ConfigMap{}
			case corev1.SchemeGroupVersion.WithKind("Service"):
				obj = &corev1.Service{}
			case appsv1.SchemeGroupVersion.WithKind("Deployment"):
				obj = &appsv1.Deployment{}
			case batchv1.SchemeGroupVersion.WithKind("Job"):
				obj = &batchv1.Job{}
			case policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"):
				obj = &policyv1.PodDisruptionBudget{}
			case autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"):
				obj = &autoscalingv2.HorizontalPodAutoscaler{}
			case networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"):
				obj = &networkingv1.NetworkPolicy{}
			default:
				t.Fatalf("%s: unexpected %s %s", where, tm.APIVersion, tm.Kind)
			}
			if err := kyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				k.configMaps[o.Name] = o
			case *corev1.Service:
				k.services[o.Name] = o
			case *appsv1.Deployment:
				k.deployments[o.Name] = o
			case *batchv1.Job:
				k.jobs[o.Name] = o
			case *policyv1.PodDisruptionBudget:
				k.pdbs = append(k.pdbs, o)
			case *autoscalingv2.HorizontalPodAutoscaler:
				k.hpas = append(k.hpas, o)
			case *networkingv1.NetworkPolicy:
				k.netpols = append(k.netpols, o)
			}
		}
	}
	return k
}

// secretKeys are the keys of the Secret "ficus" that docs/deployment.md
// tells operators to create: the --from-literal= and --from-file= names of
// its kubectl create secret command.
func secretKeys(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := continuation.ReplaceAllString(string(b), " ")
	line := regexp.MustCompile(`kubectl create secret generic ficus [^\n]*`).FindString(text)
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`--from-(?:literal|file)=([a-z0-9-]+)=`).FindAllStringSubmatch(line, -1) {
		keys[m[1]] = true
	}
	if len(keys) == 0 {
		t.Fatal("docs/deployment.md shows no `kubectl create secret generic ficus --from-…=KEY=…`")
	}
	return keys
}

// podFiles simulates a pod's mounts on the host: for each container mount
// of a ConfigMap or a Secret volume, a temporary directory holding the
// files the volume projects (a Secret's with stand-in values). It returns
// container path → host directory.
func podFiles(t *testing.T, k kubeObjects, spec corev1.PodSpec, c corev1.Container, keys map[string]bool, values map[string]string) map[string]string {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Fatalf("%s mounts volume %s, which the pod does not have", c.Name, vm.Name)
		}
		if !vm.ReadOnly {
			t.Errorf("%s mounts %s writable", c.Name, vm.MountPath)
		}
		dir := t.TempDir()
		switch {
		case v.ConfigMap != nil:
			cm, ok := k.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			for name, data := range cm.Data {
				os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600)
			}
		case v.Secret != nil:
			if v.Secret.SecretName != "ficus" {
				t.Fatalf("volume %s: Secret %s, want ficus", v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if !keys[it.Key] {
					t.Errorf("volume %s projects key %s, which docs/deployment.md does not create", v.Name, it.Key)
				}
				os.WriteFile(filepath.Join(dir, it.Path), []byte(values[it.Key]), 0o600)
			}
			if len(v.Secret.Items) == 0 {
				t.Fatalf("volume %s: name the Secret's keys it needs (items)", v.Name)
			}
		default:
			t.Fatalf("volume %s: neither a ConfigMap nor a Secret", v.Name)
		}
		mounts[vm.MountPath] = dir
	}
	return mounts
}

// podEnv is a container's environment, each value from the Secret ficus
// a stand-in for the key it names (which the docs must create).
func podEnv(t *testing.T, c corev1.Container, keys map[string]bool, values map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != "ficus" || !keys[ref.Key] {
				t.Errorf("%s: env %s from Secret %s key %s, which docs/deployment.md does not create", c.Name, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = values[ref.Key]
		default:
			t.Errorf("%s: env %s from neither a value nor the Secret", c.Name, e.Name)
		}
	}
	return env
}

// Issue 14: the Kubernetes manifests decode strictly into the API types,
// and fit ficus and each other: the config in the ConfigMap loads for
// serve (rule file included) with only what the pod provides (its env from
// the Secret, its mounted files), every key taken from the Secret is one
// docs/deployment.md creates; the probes hit /healthz and /readyz on the
// config's ops port; the Services, PDB, topology spread and network policy
// select the pods; the grace period covers the preStop pause and the
// drain; the pods run as non-root on a read-only root with no capability;
// the HPA scales the Deployment on CPU within the database's connection
// budget; the migration Job runs ficus migrate on the same image and
// config; every command exists with its flags.
func TestKubernetesManifests(t *testing.T) {
	k := decodeKube(t, filepath.Join(repoRoot, "docs", "deploy", "kubernetes"))
	keys := secretKeys(t)
	values := map[string]string{"database-url": "postgres://ficus@db.example:5432/ficus?sslmode=require",
		"key-encryption-key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	for key := range keys {
		if _, ok := values[key]; !ok {
			t.Fatalf("docs/deployment.md creates key %s; give the test a stand-in value for it", key)
		}
	}
	d, ok := k.deployments["ficus"]
	if !ok || len(k.deployments) != 1 {
		t.Fatalf("want one Deployment ficus, have %v", slices.Collect(maps.Keys(k.deployments)))
	}
	pod := d.Spec.Template.Spec
	labels := d.Spec.Template.Labels
	selects := func(what string, sel *metav1.LabelSelector) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(klabels.Set(labels)) {
			t.Errorf("%s does not select the ficus pods (%v)", what, err)
		}
	}
	selects("the Deployment's selector", d.Spec.Selector)
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]

	// The config, loaded as serve would in this pod.
	mounts := podFiles(t, k, pod, c, keys, values)
	checkArgs(t, "the Deployment", c.Args, "/etc/ficus/ficus.yaml")
	if c.Args[0] != "serve" {
		t.Fatalf("the Deployment runs %v", c.Args)
	}
	cfgText, err := os.ReadFile(filepath.Join(mounts["/etc/ficus"], "ficus.yaml"))
	if err != nil {
		t.Fatalf("the config the pod reads: %v", err)
	}
	cfg, err := mountedConfig(t, string(cfgText), mounts, podEnv(t, c, keys, values))
	if err != nil {
		t.Fatalf("the ConfigMap's config does not load for serve in the pod:\n%v", err)
	}

	// Ports and probes.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, addr := range map[string]string{"http": cfg.Listen.Addr, "ops": cfg.Listen.OpsAddr} {
		host, port, _ := strings.Cut(addr, ":")
		if strconv.Itoa(int(ports[name])) != port {
			t.Errorf("container port %s is %d, the config listens on %s", name, ports[name], addr)
		}
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s listens on %s: the kubelet and the Service cannot reach it", name, addr)
		}
	}
	for what, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		want := "/healthz"
		if what == "readiness" {
			want = "/readyz"
		}
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want || pr.HTTPGet.Port.String() != "ops" {
			t.Errorf("%s probe: want GET %s on port ops, have %+v", what, want, pr)
		}
	}

	// Shutdown: the preStop pause and the drain fit in the grace period.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep: endpoints would still send traffic to a draining pod")
	}
	need := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + cfg.ShutdownTimeout.Std(0)
	if grace := pod.TerminationGracePeriodSeconds; grace == nil || time.Duration(*grace)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds %v must exceed the preStop pause plus shutdown_timeout (%v)", grace, need)
	}

	// Hardening.
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext: want runAsNonRoot, a non-root runAsUser, seccomp RuntimeDefault")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext: want readOnlyRootFilesystem, no privilege escalation, drop ALL")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("ficus needs no Kubernetes API token: automountServiceAccountToken: false")
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Errorf("no CPU request: the HPA's utilisation has nothing to divide by")
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Errorf("no memory limit")
	}
	if len(pod.TopologySpreadConstraints) == 0 {
		t.Errorf("no topology spread")
	}
	for i, tsc := range pod.TopologySpreadConstraints {
		selects(fmt.Sprintf("topology spread %d", i), tsc.LabelSelector)
	}

	// Services route to named ports the container has.
	for _, name := range []string{"ficus", "ficus-ops"} {
		s, ok := k.services[name]
		if !ok {
			t.Fatalf("no Service %s", name)
		}
		selects("Service "+name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		for _, p := range s.Spec.Ports {
			if _, ok := ports[p.TargetPort.String()]; !ok {
				t.Errorf("Service %s targets port %s, which the container does not name", name, p.TargetPort.String())
			}
		}
		if s.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s is %s: keep it internal, put an ingress in front of ficus", name, s.Spec.Type)
		}
	}
	for _, np := range k.netpols {
		selects("NetworkPolicy "+np.Name, &np.Spec.PodSelector)
		for _, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				if _, ok := ports[p.Port.String()]; !ok {
					t.Errorf("NetworkPolicy %s names port %s, which the container does not name", np.Name, p.Port.String())
				}
			}
		}
	}

	// Disruptions and scaling.
	if len(k.pdbs) != 1 || len(k.hpas) != 1 {
		t.Fatalf("want one PDB and one HPA")
	}
	pdb, hpa := k.pdbs[0], k.hpas[0]
	selects("the PodDisruptionBudget", pdb.Spec.Selector)
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
		t.Errorf("the HPA scales %+v", hpa.Spec.ScaleTargetRef)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("the HPA scales on %+v, want CPU", hpa.Spec.Metrics)
	}
	minReplicas := *hpa.Spec.MinReplicas
	if d.Spec.Replicas == nil || *d.Spec.Replicas < minReplicas || minReplicas < 2 {
		t.Errorf("replicas %v, HPA min %d: want at least 2 and the Deployment's at the HPA's minimum", d.Spec.Replicas, minReplicas)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB: want maxUnavailable 1 (a drain takes one pod at a time, never blocks)")
	}
	// docs/deployment.md's budget: the pods' pools at the HPA's maximum,
	// plus the migration Job's pool, within 90 of PostgreSQL's default 100.
	if budget := hpa.Spec.MaxReplicas*cfg.Store.MaxConns + cfg.Store.MaxConns; budget > 90 {
		t.Errorf("maxReplicas %d × store.max_conns %d + the Job's %d = %d connections: over the budget of 90", hpa.Spec.MaxReplicas, cfg.Store.MaxConns, cfg.Store.MaxConns, budget)
	}

	// The migration Job: the same image and config, ficus migrate.
	j, ok := k.jobs["ficus-migrate"]
	if !ok {
		t.Fatal("no Job ficus-migrate")
	}
	jpod := j.Spec.Template.Spec
	jc := jpod.Containers[0]
	if jc.Image != c.Image {
		t.Errorf("the Job runs %s, the Deployment %s", jc.Image, c.Image)
	}
	checkArgs(t, "the Job", jc.Args, "/etc/ficus/ficus.yaml")
	if jc.Args[0] != "migrate" || jpod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("the Job runs %v with restartPolicy %s", jc.Args, jpod.RestartPolicy)
	}
	jmounts := podFiles(t, k, jpod, jc, keys, values)
	jtext, err := os.ReadFile(filepath.Join(jmounts["/etc/ficus"], "ficus.yaml"))
	if err != nil || string(jtext) != string(cfgText) {
		t.Fatalf("the Job reads another config: %v", err)
	}
	// ficus migrate resolves store.dsn only: the Job's env must give it.
	jenv := podEnv(t, jc, keys, values)
	dsnVar := strings.TrimPrefix(string(cfg.Store.DSN), "env:")
	if jenv[dsnVar] == "" {
		t.Errorf("the Job does not set %s (store.dsn)", dsnVar)
	}
	if jsc := jc.SecurityContext; jsc == nil || jsc.ReadOnlyRootFilesystem == nil || !*jsc.ReadOnlyRootFilesystem {
		t.Errorf("the Job's container: want readOnlyRootFilesystem")
	}
	_, tag := imageTag(t, c.Image)
	if !strings.HasPrefix(tag, "v") {
		t.Errorf("image tag %s: pin a release", tag)
	}
}

// Issue 14: docs/deploy/systemd/ficus.service parses as a unit file
// (go-systemd's parser); ExecStart runs a ficus command that exists, with
// the config beside it, which loads for serve with the secrets that
// LoadCredential provides (simulated in a temporary directory) and nothing
// else; the stop timeout covers the drain; SIGHUP reloads; the hardening
// options are set.
func TestSystemdUnit(t *testing.T) {
	dir := filepath.Join(repoRoot, "docs", "deploy", "systemd")
	f, err := os.Open(filepath.Join(dir, "ficus.service"))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := unit.DeserializeOptions(f)
	f.Close()
	if err != nil {
		t.Fatalf("ficus.service: %v", err)
	}
	svc := map[string][]string{}
	for _, o := range opts {
		if o.Section == "Service" {
			svc[o.Name] = append(svc[o.Name], o.Value)
		}
	}
	one := func(name string) string {
		t.Helper()
		if len(svc[name]) != 1 {
			t.Fatalf("[Service] %s: %q, want one", name, svc[name])
		}
		return svc[name][0]
	}
	for name, want := range map[string]string{"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "Restart": "on-failure", "KillSignal": "SIGTERM",
		"CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "LimitNOFILE": "65536"} {
		if got := one(name); got != want {
			t.Errorf("[Service] %s=%s, want %s", name, got, want)
		}
	}
	exec := strings.Fields(one("ExecStart"))
	if filepath.Base(exec[0]) != "ficus" || !filepath.IsAbs(exec[0]) {
		t.Fatalf("ExecStart runs %s", exec[0])
	}
	checkArgs(t, "ExecStart", exec[1:], "/etc/ficus/ficus.yaml")
	if exec[1] != "serve" {
		t.Fatalf("ExecStart runs ficus %s", exec[1])
	}
	if got := one("ExecReload"); got != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%s: SIGHUP reloads the rules", got)
	}

	// The credentials, where systemd puts them for this unit.
	creds := t.TempDir()
	for _, lc := range svc["LoadCredential"] {
		name, src, ok := strings.Cut(lc, ":")
		if !ok || !strings.HasPrefix(src, "/etc/ficus/credentials/") {
			t.Fatalf("LoadCredential=%s", lc)
		}
		v := map[string]string{"database-url": "postgres://ficus@127.0.0.1:5432/ficus", "key-encryption-key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}[name]
		os.WriteFile(filepath.Join(creds, name), []byte(v+"\n"), 0o600)
	}
	text, err := os.ReadFile(filepath.Join(dir, "ficus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(creds, "routes.yaml"), nil, 0o600) // /etc/ficus/routes.yaml is the operator's
	cfg, err := mountedConfig(t, string(text), map[string]string{"/run/credentials/ficus.service": creds, "/etc/ficus": creds}, nil)
	if err != nil {
		t.Fatalf("the unit's config does not load for serve with its credentials:\n%v", err)
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	if err != nil || stop <= cfg.ShutdownTimeout.Std(0) {
		t.Errorf("TimeoutStopSec=%s must exceed shutdown_timeout %v", one("TimeoutStopSec"), cfg.ShutdownTimeout.Std(0))
	}
}
