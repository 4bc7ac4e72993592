package main

// The deployment checks: docker-compose.yml as Docker Compose's own loader
// reads it, the Dockerfile, the Prometheus configuration (promtool, and a
// real Prometheus scraping the services of a running stack) and the Grafana
// dashboards (every metric their queries use is one the live services
// export). No Docker engine runs here, so these stand in for
// `docker compose up`.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v4"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/lake"
	"github.com/datamill/datamill/pkg/pg"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
)

// deployFile is a file of the repository's deployment, by its path from
// the repository root.
func deployFile(t *testing.T, path string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, path)
}

// envExample reads .env.example as a map.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(deployFile(t, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf(".env.example: %q is not NAME=value", line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// loadCompose loads docker-compose.yml with compose-go, the loader of
// Docker Compose, with the variables of .env.example.
func loadCompose(t *testing.T, opts ...func(*loader.Options)) (*types.Project, map[string]any) {
	t.Helper()
	details := types.ConfigDetails{
		WorkingDir:  deployFile(t, "."),
		ConfigFiles: []types.ConfigFile{{Filename: deployFile(t, "docker-compose.yml")}},
		Environment: envExample(t),
	}
	// Every profile: the UIs are the profile ui.
	opts = append([]func(*loader.Options){func(o *loader.Options) { o.Profiles = []string{"*"} }}, opts...)
	project, err := loader.LoadWithContext(t.Context(), details, opts...)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	raw, err := loader.LoadModelWithContext(t.Context(), details, func(o *loader.Options) {
		o.SkipInterpolation = true
		o.SkipNormalization = true
		o.SkipConsistencyCheck = true
	})
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return project, raw
}

// serviceVariables asks each built service binary for its variables
// (`<service> env --json`), which come from its configuration struct.
func serviceVariables(t *testing.T) map[string][]config.Variable {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-o", devBin + string(filepath.Separator)}
	for _, s := range serviceNames() {
		args = append(args, "./services/"+s)
	}
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	vars := map[string][]config.Variable{}
	for _, s := range serviceNames() {
		out, err := exec.Command(filepath.Join(devBin, s), "env", "--json").Output()
		if err != nil {
			t.Fatalf("%s env --json: %v", s, err)
		}
		var list []struct {
			Name     string `json:"name"`
			Default  string `json:"default"`
			Required bool   `json:"required"`
		}
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("%s env --json: %v", s, err)
		}
		for _, v := range list {
			vars[s] = append(vars[s], config.Variable{Name: v.Name, Default: v.Default, Required: v.Required})
		}
	}
	return vars
}

func TestComposeStack(t *testing.T) {
	project, raw := loadCompose(t)
	datamill := serviceNames()

	t.Run("every service has a healthcheck", func(t *testing.T) {
		for name, s := range project.Services {
			if s.Restart == "no" {
				continue // a one-shot job: compose waits for it to complete
			}
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
				t.Errorf("%s has no healthcheck", name)
			}
		}
	})

	t.Run("images are pinned", func(t *testing.T) {
		for name, s := range project.Services {
			if s.Build != nil {
				continue // built from this repository's Dockerfile
			}
			if !pinned(s.Image) {
				t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
			}
		}
		for _, image := range dockerfileImages(t) {
			if image != "scratch" && !pinned(image) {
				t.Errorf("Dockerfile: base image %q is not pinned to a version", image)
			}
		}
	})

	t.Run("datamill services get every variable they require and no unknown one", func(t *testing.T) {
		vars := serviceVariables(t)
		for _, name := range datamill {
			s, ok := project.Services[name]
			if !ok {
				t.Errorf("docker-compose.yml has no %s service", name)
				continue
			}
			known := map[string]bool{}
			for _, v := range vars[name] {
				known[v.Name] = true
				// A secret may come from the file of V_FILE instead.
				if deref(s.Environment[v.Name]) == "" && (!secretVariable(v.Name) || deref(s.Environment[v.Name+"_FILE"]) == "") && v.Required {
					t.Errorf("%s: required variable %s is not set", name, v.Name)
				}
			}
			for k := range s.Environment {
				v, file := strings.CutSuffix(k, "_FILE")
				switch {
				case known[k], file && known[v] && secretVariable(v):
				default:
					t.Errorf("%s: environment sets %s, which %s does not read", name, k, name)
				}
			}
		}
	})

	t.Run("every published port is on loopback only", func(t *testing.T) {
		for _, name := range slices.Sorted(maps.Keys(project.Services)) {
			for _, p := range project.Services[name].Ports {
				if p.HostIP != "127.0.0.1" {
					t.Errorf("%s: port %d is published on %q, want 127.0.0.1 only", name, p.Target, p.HostIP)
				}
			}
		}
	})

	t.Run("the admin address is unpublished and scraped, the ingest address the extractor's alone", func(t *testing.T) {
		scraped := map[string]string{}
		for _, sc := range prometheusConfig(t)["scrape_configs"].([]any) {
			job := sc.(map[string]any)
			dns, _ := job["dns_sd_configs"].([]any)
			for _, d := range dns {
				scraped[job["job_name"].(string)] = fmt.Sprint(d.(map[string]any)["port"])
			}
		}
		for _, name := range datamill {
			s := project.Services[name]
			_, port, err := net.SplitHostPort(deref(s.Environment["ADMIN_ADDR"]))
			if err != nil {
				t.Errorf("%s: ADMIN_ADDR %q: %v", name, deref(s.Environment["ADMIN_ADDR"]), err)
				continue
			}
			if scraped[name] != port {
				t.Errorf("%s: Prometheus scrapes port %q, the admin address is on %s", name, scraped[name], port)
			}
			for _, p := range s.Ports {
				if strconv.Itoa(int(p.Target)) == port {
					t.Errorf("%s: the admin port %s is published", name, port)
				}
			}
			if _, ok := s.Environment["HTTP_ADDR"]; ok != (name == "extractor") {
				t.Errorf("%s: HTTP_ADDR set = %v, want it for the extractor alone", name, ok)
			}
		}
	})

	t.Run("datamill services scale", func(t *testing.T) {
		for _, name := range datamill {
			s := project.Services[name]
			if s.ContainerName != "" {
				t.Errorf("%s: container_name %q stops --scale", name, s.ContainerName)
			}
			for _, p := range s.Ports {
				if p.Published != "" {
					t.Errorf("%s: host port %s is fixed, which stops --scale", name, p.Published)
				}
			}
		}
	})

	t.Run("datamill services restart, stop gracefully and are limited", func(t *testing.T) {
		for _, name := range datamill {
			s := project.Services[name]
			if !slices.Contains([]string{"always", "unless-stopped", "on-failure"}, s.Restart) {
				t.Errorf("%s: restart %q, want a restart policy", name, s.Restart)
			}
			// Longer than STAGE_TRANSACTION_TIMEOUT's default, so that a
			// stopping stage commits its batch.
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= 20*time.Second {
				t.Errorf("%s: stop_grace_period %v, want more than 20s", name, s.StopGracePeriod)
			}
			if s.Deploy == nil || s.Deploy.Resources.Limits == nil ||
				s.Deploy.Resources.Limits.MemoryBytes <= 0 || s.Deploy.Resources.Limits.NanoCPUs <= 0 {
				t.Errorf("%s: want memory and CPU limits", name)
			}
			if dep, ok := s.DependsOn["init"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s: want it to start after the init job completed", name)
			}
		}
		init, ok := project.Services["init"]
		if !ok || !slices.Equal(init.Command, types.ShellCommand{"init"}) {
			t.Errorf("want an init service running `datamill init`, got %v", init.Command)
		}
	})

	t.Run("state lives in named volumes", func(t *testing.T) {
		env := func(svc, name string) string {
			if v := project.Services[svc].Environment[name]; v != nil {
				return *v
			}
			return ""
		}
		tsdb := ""
		for _, arg := range project.Services["prometheus"].Command {
			if v, ok := strings.CutPrefix(arg, "--storage.tsdb.path="); ok {
				tsdb = v
			}
		}
		state := map[string]string{
			"kafka":      env("kafka", "KAFKA_LOG_DIRS"),
			"postgres":   filepath.Dir(env("postgres", "PGDATA")),
			"scorer":     env("scorer", "SCORER_MODEL_DIR"),
			"extractor":  strings.TrimPrefix(env("extractor", "EXTRACTOR_FILES"), "users="),
			"prometheus": tsdb,
			"grafana":    "/var/lib/grafana",
			"pgadmin":    "/var/lib/pgadmin",
			"minio":      "/data",
		}
		for svc, dir := range state {
			ok := false
			for _, v := range project.Services[svc].Volumes {
				if v.Type == types.VolumeTypeVolume && v.Target == dir {
					_, ok = project.Volumes[v.Source]
				}
			}
			if dir == "" || !ok {
				t.Errorf("%s: its state (%q) is not on a named volume", svc, dir)
			}
		}
	})

	t.Run(".env.example lists every variable and commits no secret", func(t *testing.T) {
		example := envExample(t)
		used := template.ExtractVariables(raw, template.DefaultPattern)
		for name := range used {
			if _, ok := example[name]; !ok {
				t.Errorf("docker-compose.yml reads %s, which .env.example does not list", name)
			}
		}
		// Compose reads a secret's value from the variable its
		// `environment` names.
		for _, sec := range project.Secrets {
			if sec.Environment != "" {
				used[sec.Environment] = template.Variable{Name: sec.Environment}
			}
		}
		for name := range example {
			// COMPOSE_PROFILES and the like are compose's own settings.
			if _, ok := used[name]; !ok && !strings.HasPrefix(name, "COMPOSE_") {
				t.Errorf(".env.example lists %s, which docker-compose.yml does not read", name)
			}
		}
		// A secret's value in docker-compose.yml is always a variable.
		services, _ := raw["services"].(map[string]any)
		for name, s := range services {
			envs, _ := s.(map[string]any)["environment"].(map[string]any)
			for k, v := range envs {
				value, _ := v.(string)
				// A *_FILE variable may name the file of a compose secret.
				secretFile := strings.HasSuffix(k, "_FILE") && strings.HasPrefix(value, "/run/secrets/")
				if config.SecretName(k) && value != "" && !strings.HasPrefix(value, "${") && !secretFile {
					t.Errorf("%s: %s has a literal value in docker-compose.yml", name, k)
				}
			}
		}
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("git", "-C", root, "check-ignore", ".env").CombinedOutput(); err != nil {
			t.Errorf(".env is not ignored by git: %v %s", err, out)
		}
	})

	t.Run("every secret file a service reads is a secret it is given", func(t *testing.T) {
		for name, s := range project.Services {
			for _, sec := range s.Secrets {
				if _, ok := project.Secrets[sec.Source]; !ok {
					t.Errorf("%s: secret %s is not declared", name, sec.Source)
				}
			}
			given := givenSecrets(s)
			for k, v := range s.Environment {
				if file, ok := strings.CutPrefix(deref(v), "/run/secrets/"); ok && !given[file] {
					t.Errorf("%s: %s reads /run/secrets/%s, a secret it is not given", name, k, file)
				}
			}
			// The command, entrypoint and healthcheck too.
			var words []string
			words = append(words, s.Command...)
			words = append(words, s.Entrypoint...)
			if s.HealthCheck != nil {
				words = append(words, s.HealthCheck.Test...)
			}
			for _, m := range secretPath.FindAllStringSubmatch(strings.Join(words, " "), -1) {
				if !given[m[1]] {
					t.Errorf("%s: its command or healthcheck reads /run/secrets/%s, a secret it is not given", name, m[1])
				}
			}
		}
		// The postgres container's entrypoint script.
		script, err := os.ReadFile(deployFile(t, "deploy/postgres/entrypoint.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range secretPath.FindAllStringSubmatch(string(script), -1) {
			if !givenSecrets(project.Services["postgres"])[m[1]] {
				t.Errorf("postgres: deploy/postgres/entrypoint.sh reads /run/secrets/%s, a secret it is not given", m[1])
			}
		}
	})

	// The secrets directory of `datamill secrets`, as a user makes it.
	secrets := t.TempDir()
	if _, err := makeSecrets(secrets); err != nil {
		t.Fatal(err)
	}

	t.Run("datamill secrets makes every secret file compose reads", func(t *testing.T) {
		root := deployFile(t, "secrets")
		if len(project.Secrets) == 0 {
			t.Fatal("docker-compose.yml declares no secret")
		}
		for _, name := range slices.Sorted(maps.Keys(project.Secrets)) {
			sec := project.Secrets[name]
			rel, err := filepath.Rel(root, sec.File)
			switch {
			case sec.File == "":
				t.Errorf("secret %s is not a file of ./secrets (environment %q): secrets are made by `datamill secrets`, not set in .env", name, sec.Environment)
				continue
			case err != nil || strings.HasPrefix(rel, "..") || strings.Contains(rel, string(filepath.Separator)):
				t.Errorf("secret %s: file %s is not in ./secrets", name, sec.File)
				continue
			}
			if _, err := os.Stat(filepath.Join(secrets, rel)); err != nil {
				t.Errorf("secret %s: `datamill secrets` does not make %s: %v", name, rel, err)
			}
		}
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("git", "-C", root, "check-ignore", "secrets/db_owner_url").CombinedOutput(); err != nil {
			t.Errorf("./secrets is not ignored by git: %v %s", err, out)
		}
	})

	t.Run("the superuser's password reaches the postgres container alone", func(t *testing.T) {
		for _, name := range slices.Sorted(maps.Keys(project.Services)) {
			if name == "postgres" || name == "init" { // the database and the migration job
				continue
			}
			s := project.Services[name]
			if givenSecrets(s)["postgres_password"] {
				t.Errorf("%s is given the superuser's password (secret postgres_password)", name)
			}
			for k := range s.Environment {
				if strings.HasPrefix(k, "POSTGRES_PASSWORD") {
					t.Errorf("%s: environment sets %s, the superuser's password", name, k)
				}
			}
		}
		if pg := project.Services["postgres"]; deref(pg.Environment["POSTGRES_PASSWORD_FILE"]) != "/run/secrets/postgres_password" {
			t.Errorf("postgres: POSTGRES_PASSWORD_FILE = %q, want the secret postgres_password", deref(pg.Environment["POSTGRES_PASSWORD_FILE"]))
		}
	})

	t.Run("each service connects to PostgreSQL as its own role over verified TLS", func(t *testing.T) {
		// The role each URL must name.
		want := map[string]map[string]string{"init": {"DATABASE_URL": "datamill_owner"}}
		for _, name := range []string{"loader", "scorer", "ecometer", "lake"} {
			want[name] = map[string]string{"DATABASE_URL": "datamill_" + name, "DATABASE_OWNER_URL": "datamill_owner"}
		}
		for _, name := range slices.Sorted(maps.Keys(project.Services)) {
			s := project.Services[name]
			given := givenSecrets(s)
			found := map[string]bool{}
			for k, v := range s.Environment {
				variable, file := strings.CutSuffix(k, "_FILE")
				if variable != "DATABASE_URL" && variable != "DATABASE_OWNER_URL" {
					continue
				}
				found[variable] = true
				raw := deref(v)
				if file {
					secret, ok := strings.CutPrefix(raw, "/run/secrets/")
					if !ok || !given[secret] {
						t.Errorf("%s: %s = %q is not a secret it is given", name, k, raw)
						continue
					}
					data, err := os.ReadFile(filepath.Join(secrets, secret))
					if err != nil {
						t.Errorf("%s: %s: %v", name, k, err)
						continue
					}
					raw = string(data)
				}
				u, err := url.Parse(raw)
				if err != nil {
					t.Errorf("%s: %s does not parse: %v", name, k, err)
					continue
				}
				user, q := u.User.Username(), u.Query()
				if user == "datamill" || user == "postgres" || user != want[name][variable] {
					t.Errorf("%s: %s logs in as %q, want %q", name, k, user, want[name][variable])
				}
				root, ok := strings.CutPrefix(q.Get("sslrootcert"), "/run/secrets/")
				if q.Get("sslmode") != "verify-full" || !ok || !given[root] {
					t.Errorf("%s: %s: sslmode=%q sslrootcert=%q, want verify-full against a CA secret it is given",
						name, k, q.Get("sslmode"), q.Get("sslrootcert"))
				}
			}
			for variable := range want[name] {
				if !found[variable] {
					t.Errorf("%s: %s is not set", name, variable)
				}
			}
		}
		// Grafana's and pgAdmin's logins are the read-only role's.
		data, err := os.ReadFile(deployFile(t, "deploy/grafana/provisioning/datasources/datamill.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var provisioned struct {
			Datasources []struct {
				UID, Type, User string
				JSONData        map[string]any    `yaml:"jsonData"`
				Secure          map[string]string `yaml:"secureJsonData"`
			} `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(data, &provisioned); err != nil {
			t.Fatal(err)
		}
		grafana := givenSecrets(project.Services["grafana"])
		for _, d := range provisioned.Datasources {
			if d.Type != "grafana-postgresql-datasource" {
				continue
			}
			if d.User != "datamill_reader" || d.JSONData["sslmode"] != "verify-full" {
				t.Errorf("Grafana's data source %s: user %q, sslmode %v; want datamill_reader over verify-full", d.UID, d.User, d.JSONData["sslmode"])
			}
			if root, _ := d.JSONData["sslRootCertFile"].(string); !grafana[strings.TrimPrefix(root, "/run/secrets/")] {
				t.Errorf("Grafana's data source %s: sslRootCertFile %q is not a secret Grafana is given", d.UID, root)
			}
			if pw := d.Secure["password"]; pw != "$__file{/run/secrets/db_reader_password}" || !grafana["db_reader_password"] {
				t.Errorf("Grafana's data source %s: password %q, want the file of the secret db_reader_password", d.UID, pw)
			}
		}
		data, err = os.ReadFile(deployFile(t, "deploy/pgadmin/servers.json"))
		if err != nil {
			t.Fatal(err)
		}
		var servers struct {
			Servers map[string]struct {
				Username   string
				Connection map[string]string `json:"ConnectionParameters"`
			}
		}
		if err := json.Unmarshal(data, &servers); err != nil {
			t.Fatal(err)
		}
		for id, srv := range servers.Servers {
			if srv.Username != "datamill_reader" || srv.Connection["sslmode"] != "verify-full" ||
				!givenSecrets(project.Services["pgadmin"])[strings.TrimPrefix(srv.Connection["sslrootcert"], "/run/secrets/")] {
				t.Errorf("pgAdmin's server %s: user %q, %v; want datamill_reader over verify-full with the CA", id, srv.Username, srv.Connection)
			}
		}
		// The postgres container makes every role with its password.
		for _, role := range composeRoles {
			if !givenSecrets(project.Services["postgres"])["db_"+role+"_password"] {
				t.Errorf("postgres is not given db_%s_password, which initdb/05-roles.sh sets", role)
			}
		}
	})

	t.Run("every container is confined, read-only where its image allows", func(t *testing.T) {
		// Images whose start scripts write into their own directories
		// (docker-compose.yml says which, above each).
		writable := map[string]bool{"kafka": true, "schema-registry": true, "pgadmin": true}
		for _, name := range slices.Sorted(maps.Keys(project.Services)) {
			s := project.Services[name]
			if !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("%s: cap_drop %v, want ALL", name, s.CapDrop)
			}
			if add := slices.DeleteFunc(slices.Clone(s.CapAdd), func(c string) bool { return name == "pgadmin" && c == "NET_BIND_SERVICE" }); len(add) > 0 {
				t.Errorf("%s: cap_add %v", name, add)
			}
			if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: security_opt %v, want no-new-privileges:true", name, s.SecurityOpt)
			}
			if u, _, _ := strings.Cut(s.User, ":"); u == "root" || u == "0" {
				t.Errorf("%s runs as root (user %q)", name, s.User)
			}
			if !s.ReadOnly && !writable[name] {
				t.Errorf("%s: the root filesystem is writable, want read_only", name)
			}
			if s.ReadOnly && !slices.ContainsFunc(s.Tmpfs, func(m string) bool { return strings.HasPrefix(m, "/tmp") }) {
				t.Errorf("%s: read-only without a tmpfs on /tmp", name)
			}
		}
		for _, name := range append(datamill, "init") {
			if !project.Services[name].ReadOnly {
				t.Errorf("%s: a datamill image must run read-only", name)
			}
		}
		if u := project.Services["postgres"].User; u == "" {
			t.Errorf("postgres: no user, the image starts as root")
		}
	})

	t.Run("every UI asks for a login", func(t *testing.T) {
		env := func(svc, name string) string { return deref(project.Services[svc].Environment[name]) }
		secretFile := func(svc, variable string) {
			t.Helper()
			file, ok := strings.CutPrefix(env(svc, variable), "/run/secrets/")
			if !ok || !givenSecrets(project.Services[svc])[file] {
				t.Errorf("%s: %s = %q, want the file of a secret it is given", svc, variable, env(svc, variable))
			}
		}
		// Grafana: its admin's password from a secret, no anonymous
		// access, no sign-up.
		secretFile("grafana", "GF_SECURITY_ADMIN_PASSWORD__FILE")
		if env("grafana", "GF_SECURITY_ADMIN_PASSWORD") != "" || env("grafana", "GF_AUTH_ANONYMOUS_ENABLED") != "false" ||
			env("grafana", "GF_USERS_ALLOW_SIGN_UP") != "false" {
			t.Errorf("grafana: want GF_AUTH_ANONYMOUS_ENABLED=false, GF_USERS_ALLOW_SIGN_UP=false and no GF_SECURITY_ADMIN_PASSWORD")
		}
		// pgAdmin: server mode, which asks for a login.
		secretFile("pgadmin", "PGADMIN_DEFAULT_PASSWORD_FILE")
		if mode := env("pgadmin", "PGADMIN_CONFIG_SERVER_MODE"); mode != "True" {
			t.Errorf("pgadmin: PGADMIN_CONFIG_SERVER_MODE = %q, want True", mode)
		}
		// Kafka UI: its login form, the password a Spring property read
		// from the secret's file.
		ui := project.Services["kafka-ui"]
		if env("kafka-ui", "AUTH_TYPE") != "LOGIN_FORM" || env("kafka-ui", "SPRING_SECURITY_USER_NAME") == "" ||
			!strings.Contains(env("kafka-ui", "SPRING_CONFIG_IMPORT"), "configtree:/run/secrets/") || !givenSecrets(ui)["spring.security.user.password"] {
			t.Errorf("kafka-ui: want AUTH_TYPE=LOGIN_FORM, a user, and spring.security.user.password from a secret in the config tree /run/secrets/")
		}
		// Prometheus: basic auth from a web configuration that holds the
		// hash of the password its healthcheck and Grafana send.
		prom := project.Services["prometheus"]
		web := ""
		for _, arg := range prom.Command {
			if v, ok := strings.CutPrefix(arg, "--web.config.file=/run/secrets/"); ok && givenSecrets(prom)[v] {
				web = v
			}
		}
		if web == "" {
			t.Errorf("prometheus: no --web.config.file of a secret it is given: %v", prom.Command)
		} else {
			var cfg struct {
				Users map[string]string `yaml:"basic_auth_users"`
			}
			data, err := os.ReadFile(filepath.Join(secrets, filepath.Base(project.Secrets[web].File)))
			if err == nil {
				err = yaml.Unmarshal(data, &cfg)
			}
			if err != nil || len(cfg.Users) == 0 {
				t.Errorf("prometheus: the web configuration %s has no basic_auth_users (%v)", web, err)
			}
		}
		if prom.HealthCheck == nil || !strings.Contains(strings.Join(prom.HealthCheck.Test, " "), "/run/secrets/prometheus_password") {
			t.Errorf("prometheus: the healthcheck does not authenticate with the secret prometheus_password")
		}
		// MinIO's console: the root user's password from a secret.
		secretFile("minio", "MINIO_ROOT_PASSWORD_FILE")
	})

	t.Run("no password is written in docker-compose.yml or .env.example", func(t *testing.T) {
		data, err := os.ReadFile(deployFile(t, "docker-compose.yml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range secretSetting.FindAllStringSubmatch(string(data), -1) {
			// A secret's file, or a command reading it.
			if m[1] != "secrets" && !strings.Contains(m[2], "/run/secrets/") {
				t.Errorf("docker-compose.yml: %s: %s, want it read from the file of a secret (/run/secrets/<name>)", m[1], m[2])
			}
		}
		for name := range envExample(t) {
			if config.SecretName(name) {
				t.Errorf(".env.example lists %s: secrets are files of ./secrets, made by `datamill secrets`", name)
			}
		}
	})

	t.Run("the lake: MinIO with KMS, audit and a console on loopback; its init job; the sink after it", func(t *testing.T) {
		minio, ok := project.Services["minio"]
		if !ok {
			t.Fatal("docker-compose.yml has no minio service")
		}
		for _, k := range []string{"MINIO_KMS_SECRET_KEY_FILE", "MINIO_ROOT_PASSWORD_FILE", "MINIO_AUDIT_WEBHOOK_ENDPOINT_datamill"} {
			if deref(minio.Environment[k]) == "" {
				t.Errorf("minio: %s is not set", k)
			}
		}
		if on := deref(minio.Environment["MINIO_AUDIT_WEBHOOK_ENABLE_datamill"]); on != "on" {
			t.Errorf("minio: the audit webhook is %q, want on", on)
		}
		audit := deref(project.Services["lake"].Environment["LAKE_AUDIT_ADDR"])
		if _, port, _ := strings.Cut(audit, ":"); port == "" || !strings.Contains(deref(minio.Environment["MINIO_AUDIT_WEBHOOK_ENDPOINT_datamill"]), "//lake:"+port+"/") {
			t.Errorf("minio's audit webhook %q does not reach the lake service's LAKE_AUDIT_ADDR %q",
				deref(minio.Environment["MINIO_AUDIT_WEBHOOK_ENDPOINT_datamill"]), audit)
		}
		if !strings.Contains(strings.Join(minio.Command, " "), "lake_audit_token") {
			t.Errorf("minio: the audit webhook's token is not read from the lake_audit_token secret: %q", minio.Command)
		}
		for _, p := range minio.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("minio: port %d is published on %q, want 127.0.0.1 only", p.Target, p.HostIP)
			}
		}
		init, ok := project.Services["minio-init"]
		if !ok || init.Restart != "no" || init.DependsOn["minio"].Condition != types.ServiceConditionHealthy {
			t.Errorf("want a one-shot minio-init job after a healthy minio, got %+v", init.DependsOn)
		}
		script, err := os.ReadFile(deployFile(t, "deploy/minio/init.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []string{"mc mb --ignore-existing", "mc encrypt set sse-s3", "policy lake-sink", "policy lake-reader", "user lake-sink", "user lake-reader"} {
			if !strings.Contains(string(script), step) {
				t.Errorf("deploy/minio/init.sh does not %q", step)
			}
		}
		for _, user := range []string{"lake-sink", "lake-reader"} {
			data, err := os.ReadFile(deployFile(t, "deploy/minio/"+user+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var policy struct {
				Statement []struct{ Action, Resource []string }
			}
			if err := json.Unmarshal(data, &policy); err != nil {
				t.Fatalf("%s.json: %v", user, err)
			}
			for _, st := range policy.Statement {
				for _, a := range st.Action {
					if a == "s3:PutObject" && user == "lake-reader" || strings.HasSuffix(a, "*") || strings.Contains(a, "Delete") {
						t.Errorf("%s may %s", user, a)
					}
				}
				for _, r := range st.Resource {
					if strings.Contains(r, "/") && !strings.HasSuffix(r, "/raw/*") {
						t.Errorf("%s reaches %s, outside raw/", user, r)
					}
				}
			}
		}
		lake, ok := project.Services["lake"]
		if !ok {
			t.Fatal("docker-compose.yml has no lake service")
		}
		if lake.Build == nil || deref(lake.Build.Args["SERVICE"]) != "lake" {
			t.Errorf("lake: not built with SERVICE=lake")
		}
		for dep, cond := range map[string]string{
			"minio-init": types.ServiceConditionCompletedSuccessfully, "init": types.ServiceConditionCompletedSuccessfully,
			"kafka": types.ServiceConditionHealthy, "schema-registry": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy,
		} {
			if got := lake.DependsOn[dep].Condition; got != cond {
				t.Errorf("lake: depends on %s %q, want %q", dep, got, cond)
			}
		}
		for _, k := range []string{"S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY_FILE", "LAKE_AUDIT_TOKEN_FILE", "DATABASE_URL_FILE", "KAFKA_BROKERS"} {
			if deref(lake.Environment[k]) == "" {
				t.Errorf("lake: %s is not set", k)
			}
		}
		if got, want := deref(lake.Environment["S3_BUCKET"]), deref(init.Environment["LAKE_BUCKET"]); got != want {
			t.Errorf("lake writes to bucket %q, minio-init makes %q", got, want)
		}
	})

	t.Run("prometheus scrapes every datamill service", func(t *testing.T) {
		jobs := map[string]bool{}
		for _, sc := range prometheusConfig(t)["scrape_configs"].([]any) {
			jobs[sc.(map[string]any)["job_name"].(string)] = true
		}
		for _, name := range datamill {
			if !jobs[name] {
				t.Errorf("deploy/prometheus/prometheus.yml has no job for %s", name)
			}
		}
	})

	t.Run("every Kafka listener a client uses is SASL_SSL with SCRAM-SHA-512", func(t *testing.T) {
		k := project.Services["kafka"]
		env := func(name string) string { return deref(k.Environment[name]) }
		protocols := map[string]string{}
		for _, entry := range strings.Split(env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"), ",") {
			name, protocol, _ := strings.Cut(entry, ":")
			protocols[name] = protocol
		}
		controllers := strings.Split(env("KAFKA_CONTROLLER_LISTENER_NAMES"), ",")
		// What clients reach: the advertised listeners, host:port each.
		advertised := map[string]string{}
		for _, l := range strings.Split(env("KAFKA_ADVERTISED_LISTENERS"), ",") {
			name, addr, _ := strings.Cut(l, "://")
			advertised[addr] = name
			if protocols[name] != "SASL_SSL" || slices.Contains(controllers, name) {
				t.Errorf("kafka: advertised listener %s is %q, want SASL_SSL", l, protocols[name])
			}
		}
		for _, l := range strings.Split(env("KAFKA_LISTENERS"), ",") {
			name, _, _ := strings.Cut(l, "://")
			switch {
			case slices.Contains(controllers, name):
				// The controller's: TLS, and only the broker's own
				// certificate gets in.
				if protocols[name] != "SSL" || env("KAFKA_LISTENER_NAME_"+name+"_SSL_CLIENT_AUTH") != "required" {
					t.Errorf("kafka: controller listener %s is %q with client auth %q, want SSL with client certificates required",
						name, protocols[name], env("KAFKA_LISTENER_NAME_"+name+"_SSL_CLIENT_AUTH"))
				}
			case protocols[name] != "SASL_SSL":
				t.Errorf("kafka: listener %s is %q, want SASL_SSL", l, protocols[name])
			}
		}
		for k, want := range map[string]string{
			"KAFKA_SASL_ENABLED_MECHANISMS":        "SCRAM-SHA-512",
			"KAFKA_AUTHORIZER_CLASS_NAME":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND": "false",
			"KAFKA_SUPER_USERS":                    "User:admin;User:CN=kafka",
			"KAFKA_SSL_KEYSTORE_TYPE":              "PEM",
			"KAFKA_SSL_KEYSTORE_LOCATION":          "/run/secrets/" + kafkaKeystore,
		} {
			if got := env(k); got != want {
				t.Errorf("kafka: %s = %q, want %q", k, got, want)
			}
		}
		// The datamill services and init: TLS against the stack's CA,
		// SCRAM, on an advertised SASL_SSL listener.
		for _, name := range append(slices.Clone(datamill), "init") {
			s := project.Services[name]
			env := func(k string) string { return deref(s.Environment[k]) }
			ca, ok := strings.CutPrefix(env("KAFKA_TLS_CA_FILE"), "/run/secrets/")
			if env("KAFKA_TLS") != "true" || !ok || !givenSecrets(s)[ca] || env("KAFKA_SASL_MECHANISM") != "SCRAM-SHA-512" {
				t.Errorf("%s: KAFKA_TLS=%q KAFKA_TLS_CA_FILE=%q KAFKA_SASL_MECHANISM=%q, want TLS with a CA secret it is given and SCRAM-SHA-512",
					name, env("KAFKA_TLS"), env("KAFKA_TLS_CA_FILE"), env("KAFKA_SASL_MECHANISM"))
			}
			for _, b := range strings.Split(env("KAFKA_BROKERS"), ",") {
				if _, ok := advertised[b]; !ok {
					t.Errorf("%s: broker %s is no advertised listener of kafka", name, b)
				}
			}
		}
		// The registry's store and the UI.
		reg := project.Services["schema-registry"]
		if b := deref(reg.Environment["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"]); !strings.HasPrefix(b, "SASL_SSL://") ||
			deref(reg.Environment["SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL"]) != "SASL_SSL" ||
			deref(reg.Environment["SCHEMA_REGISTRY_KAFKASTORE_SASL_MECHANISM"]) != "SCRAM-SHA-512" {
			t.Errorf("schema-registry: its store is not on SASL_SSL with SCRAM-SHA-512 (%s)", b)
		}
		ui := project.Services["kafka-ui"]
		if deref(ui.Environment["KAFKA_CLUSTERS_0_PROPERTIES_SECURITY_PROTOCOL"]) != "SASL_SSL" ||
			deref(ui.Environment["KAFKA_CLUSTERS_0_PROPERTIES_SASL_MECHANISM"]) != "SCRAM-SHA-512" {
			t.Errorf("kafka-ui: not on SASL_SSL with SCRAM-SHA-512")
		}
	})

	t.Run("each service signs in to Kafka as its own principal, the admin's password init's and the broker's alone", func(t *testing.T) {
		passwordFile := func(s types.ServiceConfig, principal string) {
			t.Helper()
			file := kafkaPasswordFile(principal)
			if got := deref(s.Environment["KAFKA_SASL_PASSWORD_FILE"]); got != "/run/secrets/"+file || !givenSecrets(s)[file] {
				t.Errorf("%s: KAFKA_SASL_PASSWORD_FILE = %q, want the secret %s it is given", s.Name, got, file)
			}
		}
		for _, name := range datamill {
			s := project.Services[name]
			if got := deref(s.Environment["KAFKA_SASL_USERNAME"]); got != name {
				t.Errorf("%s: KAFKA_SASL_USERNAME = %q, want its own principal %q", name, got, name)
			}
			passwordFile(s, name)
		}
		init := project.Services["init"]
		if got := deref(init.Environment["KAFKA_SASL_USERNAME"]); got != kafka.Admin {
			t.Errorf("init: KAFKA_SASL_USERNAME = %q, want the admin", got)
		}
		passwordFile(init, kafka.Admin)
		// init makes every principal from the password files of its
		// KAFKA_PRINCIPALS_DIR.
		dir := deref(init.Environment["KAFKA_PRINCIPALS_DIR"])
		for _, p := range kafka.Principals() {
			if dir != "/run/secrets" || !givenSecrets(init)[kafkaPasswordFile(p)] {
				t.Errorf("init: KAFKA_PRINCIPALS_DIR = %q without the secret %s", dir, kafkaPasswordFile(p))
			}
		}
		if !givenSecrets(project.Services["kafka"])[kafkaPasswordFile(kafka.Admin)] {
			t.Errorf("kafka is not given %s, which it formats its storage with", kafkaPasswordFile(kafka.Admin))
		}
		for _, name := range slices.Sorted(maps.Keys(project.Services)) {
			s := project.Services[name]
			if name != "init" && name != "kafka" && givenSecrets(s)[kafkaPasswordFile(kafka.Admin)] {
				t.Errorf("%s is given the Kafka admin's password", name)
			}
			if name != "init" && deref(s.Environment["KAFKA_SASL_USERNAME"]) == kafka.Admin {
				t.Errorf("%s signs in to Kafka as the admin", name)
			}
		}
		// The registry and the UI: their principals' logins, from the
		// files of their secrets.
		if !givenSecrets(project.Services["schema-registry"])[kafkaPasswordFile(kafka.Registry)] {
			t.Errorf("schema-registry is not given %s", kafkaPasswordFile(kafka.Registry))
		}
		if !givenSecrets(project.Services["kafka-ui"])["kafka.clusters.0.properties.sasl.jaas.config"] {
			t.Errorf("kafka-ui is not given its SASL login as the property kafka.clusters.0.properties.sasl.jaas.config")
		}
		for _, sec := range project.Services["kafka-ui"].Secrets {
			if sec.Target == "kafka.clusters.0.properties.sasl.jaas.config" {
				data, err := os.ReadFile(filepath.Join(secrets, sec.Source))
				if err != nil || !strings.Contains(string(data), `username="`+kafka.UI+`"`) {
					t.Errorf("kafka-ui: its login %s is not the principal %s's (%v)", sec.Source, kafka.UI, err)
				}
			}
		}
	})

	t.Run("the registry's start sets its SCRAM login from its secret", func(t *testing.T) {
		// Its command, run by sh with the secrets directory in place of
		// /run/secrets and env in place of the image's start.
		reg := project.Services["schema-registry"]
		script := strings.Join(reg.Command, " ")
		script = strings.ReplaceAll(script, "/run/secrets/", secrets+"/")
		script = strings.ReplaceAll(script, "exec /etc/confluent/docker/run", "exec env")
		if slices.Equal(reg.Entrypoint, types.ShellCommand{"/bin/sh", "-c"}) == false {
			t.Fatalf("schema-registry: entrypoint %v, want /bin/sh -c", reg.Entrypoint)
		}
		out, err := exec.Command("/bin/sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("schema-registry's command: %v", err)
		}
		pw, err := os.ReadFile(filepath.Join(secrets, kafkaPasswordFile(kafka.Registry)))
		if err != nil {
			t.Fatal(err)
		}
		want := "SCHEMA_REGISTRY_KAFKASTORE_SASL_JAAS_CONFIG=" + scramLogin(kafka.Registry, string(pw))
		if !slices.Contains(strings.Split(string(out), "\n"), want) {
			t.Errorf("schema-registry's command does not set %q", want)
		}
	})

	t.Run("datamill secrets makes Kafka's keystore and every principal's password", func(t *testing.T) {
		for _, name := range append([]string{kafkaKeystore, "kafka_user_ui_jaas"}, func() []string {
			var files []string
			for _, p := range append([]string{kafka.Admin}, kafka.Principals()...) {
				files = append(files, kafkaPasswordFile(p))
			}
			return files
		}()...) {
			if _, ok := project.Secrets[name]; !ok {
				t.Errorf("docker-compose.yml declares no secret %s", name)
			}
			if _, err := os.Stat(filepath.Join(secrets, name)); err != nil {
				t.Errorf("datamill secrets does not make %s: %v", name, err)
			}
		}
	})

	t.Run("postgres audits DDL and role changes with pgaudit of its major version", func(t *testing.T) {
		pg := project.Services["postgres"]
		if pg.Build == nil || filepath.Clean(pg.Build.Context) != deployFile(t, "deploy/postgres") {
			t.Fatalf("postgres: not built from deploy/postgres (build %+v)", pg.Build)
		}
		if strings.HasPrefix(pg.Image, "postgres:") {
			t.Errorf("postgres: image %q names the official image, which its build would replace", pg.Image)
		}
		dockerfile, err := os.ReadFile(deployFile(t, "deploy/postgres/Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		// FROM the pinned official image, or another of the same contract
		// given as POSTGRES_IMAGE (compose-test's stand-in).
		from := regexp.MustCompile(`(?m)^ARG POSTGRES_IMAGE=postgres:(\d+)\.\d+\S*\nFROM \$\{POSTGRES_IMAGE\}$`).FindSubmatch(dockerfile)
		if from == nil {
			t.Fatal("deploy/postgres/Dockerfile is not FROM a pinned postgres image (ARG POSTGRES_IMAGE=postgres:<version>, FROM ${POSTGRES_IMAGE})")
		}
		// PG_MAJOR is the image's own major version.
		if !regexp.MustCompile(`apt-get install [^\n]*"?postgresql-\$\{PG_MAJOR\}-pgaudit`).Match(dockerfile) {
			t.Errorf("deploy/postgres/Dockerfile does not install postgresql-${PG_MAJOR}-pgaudit (PG_MAJOR %s)", from[1])
		}
		script, err := os.ReadFile(deployFile(t, "deploy/postgres/entrypoint.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, setting := range []string{"-c shared_preload_libraries=pgaudit", "-c pgaudit.log=ddl,role"} {
			if !strings.Contains(string(script), setting) {
				t.Errorf("deploy/postgres/entrypoint.sh does not pass %s", setting)
			}
		}
	})

	t.Run("the schema registry asks for basic auth, which every client sends", func(t *testing.T) {
		reg := project.Services["schema-registry"]
		env := func(k string) string { return deref(reg.Environment[k]) }
		jaas, err := os.ReadFile(deployFile(t, "deploy/schema-registry/jaas.conf"))
		if err != nil {
			t.Fatal(err)
		}
		realm := regexp.MustCompile(`(?m)^(\S+) \{`).FindSubmatch(jaas)
		if env("SCHEMA_REGISTRY_AUTHENTICATION_METHOD") != "BASIC" || realm == nil || env("SCHEMA_REGISTRY_AUTHENTICATION_REALM") != string(realm[1]) {
			t.Errorf("schema-registry: method %q, realm %q; want BASIC in the realm of deploy/schema-registry/jaas.conf",
				env("SCHEMA_REGISTRY_AUTHENTICATION_METHOD"), env("SCHEMA_REGISTRY_AUTHENTICATION_REALM"))
		}
		mounted := slices.ContainsFunc(reg.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Source == deployFile(t, "deploy/schema-registry") && v.ReadOnly &&
				env("SCHEMA_REGISTRY_OPTS") == "-Djava.security.auth.login.config="+v.Target+"/jaas.conf"
		})
		if !mounted {
			t.Errorf("schema-registry: SCHEMA_REGISTRY_OPTS %q does not name deploy/schema-registry/jaas.conf, mounted read-only", env("SCHEMA_REGISTRY_OPTS"))
		}
		// The users file the login module reads: a secret, whose user
		// has the password every client sends and a role the registry
		// requires.
		usersFile := regexp.MustCompile(`file="/run/secrets/([^"]+)"`).FindSubmatch(jaas)
		if usersFile == nil || !givenSecrets(reg)[string(usersFile[1])] {
			t.Fatalf("deploy/schema-registry/jaas.conf reads no users file the registry is given")
		}
		users, err := os.ReadFile(filepath.Join(secrets, string(usersFile[1])))
		if err != nil {
			t.Fatal(err)
		}
		password, err := os.ReadFile(filepath.Join(secrets, "schema_registry_password"))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s: %s,%s", registryUser, password, env("SCHEMA_REGISTRY_AUTHENTICATION_ROLES"))
		if !slices.Contains(strings.Split(string(users), "\n"), want) {
			t.Errorf("%s does not hold the line %q: the user, its password and the role the registry requires", usersFile[1], registryUser+": …")
		}
		if reg.HealthCheck == nil || !strings.Contains(strings.Join(reg.HealthCheck.Test, " "), `-u "`+registryUser+`:$(cat /run/secrets/schema_registry_password)"`) {
			t.Errorf("schema-registry: the healthcheck does not send the registry's login")
		}
		for _, name := range append(slices.Clone(datamill), "init") {
			s := project.Services[name]
			file, ok := strings.CutPrefix(deref(s.Environment["SCHEMA_REGISTRY_PASSWORD_FILE"]), "/run/secrets/")
			if deref(s.Environment["SCHEMA_REGISTRY_USERNAME"]) != registryUser || !ok || file != "schema_registry_password" || !givenSecrets(s)[file] {
				t.Errorf("%s: SCHEMA_REGISTRY_USERNAME %q, SCHEMA_REGISTRY_PASSWORD_FILE %q; want %s with the secret schema_registry_password",
					name, deref(s.Environment["SCHEMA_REGISTRY_USERNAME"]), deref(s.Environment["SCHEMA_REGISTRY_PASSWORD_FILE"]), registryUser)
			}
		}
		ui := project.Services["kafka-ui"]
		if deref(ui.Environment["KAFKA_CLUSTERS_0_SCHEMAREGISTRYAUTH_USERNAME"]) != registryUser || !givenSecrets(ui)["kafka.clusters.0.schemaRegistryAuth.password"] {
			t.Errorf("kafka-ui: no schema registry login (KAFKA_CLUSTERS_0_SCHEMAREGISTRYAUTH_USERNAME and the property kafka.clusters.0.schemaRegistryAuth.password)")
		}
		for _, sec := range ui.Secrets {
			if sec.Target == "kafka.clusters.0.schemaRegistryAuth.password" && sec.Source != "schema_registry_password" {
				t.Errorf("kafka-ui: its registry password is the secret %s, want schema_registry_password", sec.Source)
			}
		}
	})

	t.Run("the Dockerfile copies every module of the workspace", func(t *testing.T) {
		dockerfile, err := os.ReadFile(deployFile(t, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		work, err := os.ReadFile(deployFile(t, "go.work"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^\s+\./(\S+)$`).FindAllStringSubmatch(string(work), -1) {
			if !strings.Contains(string(dockerfile), "COPY "+m[1]+"/go.mod "+m[1]+"/go.sum") {
				t.Errorf("Dockerfile does not copy %s/go.mod before `go mod download`", m[1])
			}
		}
	})
}

// secretPath finds the secret files a text reads, by their name.
var secretPath = regexp.MustCompile(`/run/secrets/([A-Za-z0-9._-]+)`)

// secretSetting finds the settings of docker-compose.yml whose name says
// they hold a secret, and their value.
var secretSetting = regexp.MustCompile(`(?m)^[ \t]*([A-Za-z0-9_]*(?i:PASSWORD|SECRET|TOKEN)[A-Za-z0-9_]*)[ \t]*[:=][ \t]*(\S.*)$`)

// givenSecrets lists the secrets a service is given, by the name of their
// file under /run/secrets.
func givenSecrets(s types.ServiceConfig) map[string]bool {
	given := map[string]bool{}
	for _, sec := range s.Secrets {
		target := strings.TrimPrefix(sec.Target, "/run/secrets/")
		if target == "" {
			target = sec.Source
		}
		given[target] = true
	}
	return given
}

// secretVariable tells whether a service reads the variable as a secret,
// which config.Parse reads from the file of <name>_FILE as well: its name
// says so, or a shared configuration block tags it `secret:"true"`.
func secretVariable(name string) bool {
	if config.SecretName(name) {
		return true
	}
	for _, block := range []any{pg.Config{}, kafka.Config{}, serde.Config{}, lake.Config{}} {
		t := reflect.TypeOf(block)
		for i := range t.NumField() {
			f := t.Field(i)
			if v, _, _ := strings.Cut(f.Tag.Get("env"), ","); v == name && f.Tag.Get("secret") == "true" {
				return true
			}
		}
	}
	return false
}

// pinned tells an image reference with a version tag or a digest from one
// that follows a moving tag (none, latest, or a tag without a digit).
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon < slash+1 {
		return false
	}
	tag := image[colon+1:]
	return tag != "latest" && strings.ContainsAny(tag, "0123456789")
}

// dockerfileImages lists the base images of the Dockerfile's stages, with
// ARG defaults substituted, leaving out its own stages.
func dockerfileImages(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(deployFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args, stages := map[string]string{}, map[string]bool{}
	var images []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				args[k] = v
			}
		case "FROM":
			image := os.Expand(f[1], func(k string) string { return args[k] })
			if !stages[image] {
				images = append(images, image)
			}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				stages[f[3]] = true
			}
		}
	}
	if len(images) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	return images
}

func prometheusConfig(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(deployFile(t, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	return cfg
}

// needPrometheus skips a test when Prometheus is not installed, except in
// CI, where .ci/run installs it and its absence is a failure.
func needPrometheus(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found (Debian package prometheus; .ci/run installs it)", bin)
			}
			t.Skipf("%s not found: apt-get install prometheus", bin)
		}
	}
}

func TestPromtoolChecksThePrometheusConfig(t *testing.T) {
	needPrometheus(t)
	out, err := exec.Command("promtool", "check", "config", deployFile(t, "deploy/prometheus/prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

// alertRule is the part of an alerting rule the checks read.
type alertRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

// alertRules reads the rules of deploy/prometheus/alerts.yml.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	data, err := os.ReadFile(deployFile(t, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var rules []alertRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return rules
}

// The alerting rules fire on what they are about, and only then: promtool
// evaluates them against the series of deploy/prometheus/alerts_test.yml.
func TestPromtoolTestsTheAlertRules(t *testing.T) {
	needPrometheus(t)
	out, err := exec.Command("promtool", "test", "rules", deployFile(t, "deploy/prometheus/alerts_test.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr   string `json:"expr"`
		RawSQL string `json:"rawSql"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// dashboards parses every dashboard of deploy/grafana/dashboards and
// checks that its panels use the provisioned data sources.
func dashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(deployFile(t, "deploy/grafana/dashboards/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards (%v)", err)
	}
	data, err := os.ReadFile(deployFile(t, "deploy/grafana/provisioning/datasources/datamill.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var provisioned struct {
		Datasources []struct{ UID, Type string } `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(data, &provisioned); err != nil {
		t.Fatalf("datasources: %v", err)
	}
	sources := map[string]string{}
	for _, d := range provisioned.Datasources {
		sources[d.UID] = d.Type
	}
	out := map[string]dashboard{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", filepath.Base(file), err)
		}
		for _, p := range allPanels(d.Panels) {
			if p.Type == "row" {
				continue
			}
			if typ, ok := sources[p.Datasource.UID]; !ok || typ != p.Datasource.Type {
				t.Errorf("%s, panel %q: data source %+v is not provisioned", d.Title, p.Title, p.Datasource)
			}
		}
		out[filepath.Base(file)] = d
	}
	return out
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// grafanaRange replaces Grafana's range variables, which PromQL does not
// know, with a range.
var grafanaRange = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "5m")

// metricNames parses a PromQL expression and lists the metrics it selects.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaRange.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

func TestDashboardsParse(t *testing.T) {
	queries := 0
	for file, d := range dashboards(t) {
		for _, p := range allPanels(d.Panels) {
			for _, target := range p.Targets {
				if target.Expr == "" {
					continue
				}
				queries++
				names, err := metricNames(target.Expr)
				if err != nil || len(names) == 0 {
					t.Errorf("%s, panel %q: query %q: %v (metrics %v)", file, p.Title, target.Expr, err, names)
				}
			}
		}
	}
	if queries == 0 {
		t.Error("the dashboards hold no Prometheus query")
	}
}

// TestPrometheusScrapesTheLiveStack runs the stack of `datamill dev` with
// data flowing through it (a small demo), points a real Prometheus at its
// services with the jobs of deploy/prometheus/prometheus.yml, and checks
// that every target is up, that every metric the dashboards query is
// exported by some live service, that Prometheus accepts every query, and
// that the PostgreSQL panels' SQL runs on the live database.
func TestPrometheusScrapesTheLiveStack(t *testing.T) {
	needPrometheus(t)
	boards := dashboards(t)
	dir := t.TempDir()
	inbox, models := filepath.Join(dir, "inbox"), filepath.Join(dir, "models")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &devStack{
		flags: devFlags{dir: dir, partitions: 3, readyTimeout: 3 * time.Minute, secureKafka: true},
		env:   map[string]string{"RUN_ID": "deploy-test"}, // dev gives it to the services
		environ: append(toolchainEnv(),
			"EXTRACTOR_FILES=users="+inbox, "EXTRACTOR_SCAN_INTERVAL=200ms",
			"SCORER_MODEL_DIR="+models, "SCORER_MODEL_POLL=100ms", "ECO_SAMPLE_INTERVAL=500ms"),
		out: &lockedWriter{w: io.Discard},
	}
	d.onReady = func(ctx context.Context, eps, svc map[string]string) error {
		dr := demoRun{
			ds: generated(t), eps: eps, svc: svc, inbox: inbox, models: models, runID: "deploy-test",
			scorer: filepath.Join(dir, "bin", "scorer"), progress: t.Logf,
		}
		summary, err := dr.demo(ctx, gen.Options{Users: 2000, Seed: 5, Dirty: 0.2})
		if err != nil {
			return err
		}
		if summary.Counts.Scored == 0 || len(summary.DeadLetters) == 0 {
			return fmt.Errorf("the demo scored %d events with %d dead-letter reasons: want both", summary.Counts.Scored, len(summary.DeadLetters))
		}
		prom := startPrometheus(t, dir, svc)
		awaitTargetsUp(ctx, t, prom, len(svc))

		exported := map[string]bool{}
		for name, addr := range svc {
			m, err := fetchMetrics(ctx, addr)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			for series := range m {
				metric, _, _ := strings.Cut(series, "{")
				exported[metric] = true
			}
		}
		for _, rule := range alertRules(t) {
			names, err := metricNames(rule.Expr)
			if err != nil {
				t.Errorf("alerts.yml, %s: %v", rule.Alert, err)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("alerts.yml, %s: metric %s is exported by no live service", rule.Alert, n)
				}
			}
		}
		db, err := pgx.Connect(ctx, eps["DATABASE_URL"])
		if err != nil {
			return err
		}
		defer db.Close(context.Background())
		for file, board := range boards {
			for _, p := range allPanels(board.Panels) {
				for _, target := range p.Targets {
					switch {
					case target.Expr != "":
						names, err := metricNames(target.Expr)
						if err != nil {
							t.Errorf("%s, panel %q: %v", file, p.Title, err)
						}
						for _, n := range names {
							if !exported[n] {
								t.Errorf("%s, panel %q: metric %s is exported by no live service", file, p.Title, n)
							}
						}
						if err := promQuery(ctx, prom, grafanaRange.Replace(target.Expr)); err != nil {
							t.Errorf("%s, panel %q: Prometheus refuses %q: %v", file, p.Title, target.Expr, err)
						}
					case target.RawSQL != "" && p.Datasource.UID == readerSource:
						// The jobs dataset does not run here:
						// TestJobsDashboardReadsTheViewsAsTheReader runs
						// these on its views, as the read-only role.
					case target.RawSQL != "":
						rows, err := db.Query(ctx, target.RawSQL)
						if err == nil {
							for rows.Next() {
							}
							rows.Close()
							err = rows.Err()
						}
						if err != nil {
							t.Errorf("%s, panel %q: SQL fails on the live database: %v", file, p.Title, err)
						}
					}
				}
			}
		}
		return nil
	}
	if err := d.run(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// startPrometheus runs Prometheus on the jobs of
// deploy/prometheus/prometheus.yml, each job's DNS discovery replaced by the
// address of the live service of that name, and returns its address.
func startPrometheus(t *testing.T, dir string, svc map[string]string) string {
	t.Helper()
	cfg := prometheusConfig(t)
	var jobs []any
	for _, sc := range cfg["scrape_configs"].([]any) {
		job := sc.(map[string]any)
		addr, ok := svc[job["job_name"].(string)]
		if !ok {
			continue // Prometheus itself
		}
		delete(job, "dns_sd_configs")
		job["static_configs"] = []any{map[string]any{"targets": []any{addr}}}
		jobs = append(jobs, job)
	}
	cfg["scrape_configs"] = jobs
	cfg["global"] = map[string]any{"scrape_interval": "1s"}
	// Rule files are relative to the configuration, which moves.
	if files, ok := cfg["rule_files"].([]any); ok {
		for i, f := range files {
			files[i] = deployFile(t, "deploy/prometheus/"+f.(string))
		}
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command("prometheus", "--config.file="+file, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	logs, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logs.Close()
	})
	return addr
}

func freeAddr(t *testing.T) string { return "127.0.0.1:" + freePort(t) }

// awaitTargetsUp waits until Prometheus reports want active targets, all up.
func awaitTargetsUp(ctx context.Context, t *testing.T, prom string, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var resp struct {
			Data struct {
				ActiveTargets []struct {
					ScrapePool string `json:"scrapePool"`
					Health     string `json:"health"`
					LastError  string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(ctx, "http://"+prom+"/api/v1/targets", &resp); err == nil {
			up := 0
			var states []string
			for _, tg := range resp.Data.ActiveTargets {
				if tg.Health == "up" {
					up++
				}
				states = append(states, tg.ScrapePool+"="+tg.Health+" "+tg.LastError)
			}
			if up == want && len(resp.Data.ActiveTargets) == want {
				return
			}
			last = strings.Join(states, "; ")
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("Prometheus: want %d targets up, got: %s", want, last)
}

// promQuery runs an instant query and fails when Prometheus refuses it.
func promQuery(ctx context.Context, prom, expr string) error {
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	err := getJSON(ctx, "http://"+prom+"/api/v1/query?query="+url.QueryEscape(expr), &resp)
	if err == nil && resp.Status != "success" {
		err = fmt.Errorf("%s", resp.Error)
	}
	return err
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestImageRootFilesystemRunsAService builds the root filesystem of the
// cleaner's image with the script the Dockerfile runs, starts the cleaner
// chrooted into it as the image's unprivileged user, and checks that the
// image's healthcheck (`/app healthcheck --ready`, run in the same root)
// passes once it works: a static program that needs nothing the empty base
// image lacks. The root is read-only with a tmpfs on /tmp, as compose runs
// the datamill services (read_only). chroot needs root, which CI has.
func TestImageRootFilesystemRunsAService(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root, for chroot")
		}
		t.Skip("chroot needs root")
	}
	rootfs := t.TempDir()
	if out, err := exec.Command(deployFile(t, "scripts/docker/rootfs.sh"), "cleaner", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("rootfs.sh: %v\n%s", err, out)
	}
	// A container has /proc (the eco sampler reads it); bind the host's.
	proc := filepath.Join(rootfs, "proc")
	if err := os.Mkdir(proc, 0o555); err != nil {
		t.Fatal(err)
	}
	mount := func(target string, args ...string) {
		t.Helper()
		if out, err := exec.Command("mount", append(args, target)...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v %s: %v %s", args, target, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", "--lazy", target).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", target, err, out)
			}
		})
	}
	// The root read-only, as compose's read_only makes it, and its tmpfs.
	mount(rootfs, "--bind", rootfs)
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v %s", rootfs, err, out)
	}
	mount(proc, "--bind", "/proc")
	mount(filepath.Join(rootfs, "tmp"), "-t", "tmpfs", "-o", "size=16m,mode=1777", "tmpfs")
	if err := os.WriteFile(filepath.Join(rootfs, "written"), nil, 0o600); err == nil {
		t.Fatal("the root filesystem is writable")
	}
	// The cleaner connects as itself; the broker's CA goes into the
	// image's tmpfs, where the process in the chroot can read it, as
	// compose mounts it.
	stack := testkit.As(testkit.Stack(t, false), "cleaner")
	ca, err := os.ReadFile(config.ToMap(stack)["KAFKA_TLS_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "tmp", "ca.pem"), ca, 0o644); err != nil { // #nosec G306 -- a CA certificate, public, read by the image's user
		t.Fatal(err)
	}
	environ := append(stack, "KAFKA_TLS_CA_FILE=/tmp/ca.pem", "ADMIN_ADDR="+freeAddr(t))
	chrooted := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "chroot", append([]string{"--userspec=65532:65532", rootfs, "/app"}, args...)...)
		cmd.Env = environ
		return cmd
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cleaner := chrooted(ctx)
	var logs strings.Builder
	cleaner.Stdout, cleaner.Stderr = &logs, &logs
	if err := cleaner.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cleaner.Wait() }()
	defer func() { cancel(); <-exited }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := chrooted(t.Context(), "healthcheck", "--ready").CombinedOutput()
		if err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the cleaner exited (%v):\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck --ready still fails after 60 s: %v %s\ncleaner's log:\n%s", err, out, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := exec.Command("ps", "-o", "user=", "-p", fmt.Sprint(cleaner.Process.Pid)).Output()
	if err == nil && strings.TrimSpace(string(out)) == "root" {
		// chroot itself execs /app, so the pid is the cleaner's.
		t.Errorf("the cleaner runs as root")
	}
}

// readerSource is the uid of Grafana's PostgreSQL data source that logs in
// as the read-only role of deploy/postgres/reader.sql.
const readerSource = "postgres-reader"

// TestJobsDashboardReadsTheViewsAsTheReader creates the read-only role
// with deploy/postgres/initdb/10-reader.sh and reader.sql, then the jobs table and the views the
// jobs dataset declares (after the role, as the loader does on a new
// database), and runs every panel's SQL of the jobs dashboard as the role,
// each answering rows; the role reads no table and writes nothing.
func TestJobsDashboardReadsTheViewsAsTheReader(t *testing.T) {
	board, ok := dashboards(t)["jobs.json"]
	if !ok {
		t.Fatal("no deploy/grafana/dashboards/jobs.json")
	}
	data, err := os.ReadFile(deployFile(t, "deploy/grafana/provisioning/datasources/datamill.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var provisioned struct {
		Datasources []struct{ UID, User string } `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(data, &provisioned); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(provisioned.Datasources, func(d struct{ UID, User string }) bool { return d.UID == readerSource }); i < 0 || provisioned.Datasources[i].User != "datamill_reader" {
		t.Errorf("no data source %s logging in as datamill_reader: %+v", readerSource, provisioned.Datasources)
	}

	url := testkit.Postgres(t)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	// Roles belong to the cluster, which the tests share: one made by an
	// earlier run loses its password, which the script sets again.
	if _, err := admin.Exec(ctx, `do $$ begin
		if exists (select from pg_roles where rolname = 'datamill_reader') then alter role datamill_reader password null; end if;
		end $$`); err != nil {
		t.Fatal(err)
	}
	// The script the postgres container runs on its first start, as it
	// runs it (psql as the superuser), twice: running it again changes
	// nothing.
	script := deployFile(t, "deploy/postgres/initdb/10-reader.sh")
	for range 2 {
		cmd := exec.CommandContext(ctx, "sh", script)
		// The test cluster takes TLS and SCRAM passwords only.
		cmd.Env = append(os.Environ(), "PGHOST="+cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port), "PGPASSWORD="+cfg.Password, "PGSSLMODE=require",
			"POSTGRES_USER="+cfg.User, "POSTGRES_DB="+cfg.Database, "READER_PASSWORD=reader-secret",
			"READER_SQL="+deployFile(t, "deploy/postgres/reader.sql"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	var password bool
	if err := admin.QueryRow(ctx, "select rolpassword is not null from pg_authid where rolname = 'datamill_reader'").Scan(&password); err != nil || !password {
		t.Errorf("datamill_reader has a password: %v (%v)", password, err)
	}

	// The columns of the jobs table the views read, and offers of 30
	// titles and 26 families of unequal demand (enough for three bands of
	// 10), a few places and sources, some stating a salary and the others
	// estimated by the model.
	_, err = admin.Exec(ctx, `create table jobs (id text primary key, cluster_id text, title_norm text, job_family text,
			locations text[], salary_annual double precision, salary_stated boolean not null, source_name text, published_on date);
		create table jobs_predictions (id bigint generated always as identity, job_id text references jobs, estimate double precision,
			created_at timestamptz not null default now());
		insert into jobs
		select 'j' || i, case when i % 10 = 0 then 'j' || (i - 1) end,
			'title ' || floor(sqrt(i))::int, 'family ' || floor(sqrt(i) / 1.2)::int,
			array[(array['DE', 'FR', 'US', 'NL', 'ES', 'PL'])[i % 6 + 1], (array['EU', 'WW'])[i % 2 + 1]],
			case when i % 2 = 0 then 40000 + i * 100 end, i % 2 = 0,
			(array['remotive', 'arbeitnow', 'board'])[i % 3 + 1], date '2026-11-01' + i % 20
		from generate_series(1, 900) i;
		insert into jobs_predictions (job_id, estimate) select id, 50000 from jobs where not salary_stated`)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := lookUp(nil, io.Discard, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Decl.Views) == 0 {
		t.Fatal("the jobs dataset declares no views")
	}
	for _, v := range ds.Decl.Views {
		if _, err := admin.Exec(ctx, "create or replace view "+ident(v.Name)+" as "+v.SQL); err != nil {
			t.Fatalf("view %s: %v", v.Name, err)
		}
	}

	cfg.User, cfg.Password = "datamill_reader", "reader-secret"
	reader, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as datamill_reader: %v", err)
	}
	defer reader.Close(context.Background())

	queries := 0
	for _, p := range allPanels(board.Panels) {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != readerSource {
			t.Errorf("jobs.json, panel %q: data source %q, want the read-only %q", p.Title, p.Datasource.UID, readerSource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("jobs.json, panel %q: no query", p.Title)
		}
		for _, target := range p.Targets {
			queries++
			rows, err := reader.Query(ctx, target.RawSQL)
			n := 0
			if err == nil {
				for rows.Next() {
					n++
				}
				rows.Close()
				err = rows.Err()
			}
			switch {
			case err != nil:
				t.Errorf("jobs.json, panel %q: SQL fails as datamill_reader: %v\n%s", p.Title, err, target.RawSQL)
			case n == 0:
				t.Errorf("jobs.json, panel %q: no rows\n%s", p.Title, target.RawSQL)
			}
		}
	}
	if queries < 8 {
		t.Errorf("jobs.json holds %d queries, want the demand bands, locations, salaries and sources", queries)
	}

	refused := []string{
		"select count(*) from jobs",
		"select count(*) from jobs_predictions",
		"delete from jobs_unique",
		"create table mine (x int)",
		"create view mine as select 1",
		"set transaction read write; update jobs set title_norm = 'x'",
	}
	for _, sql := range refused {
		tx, err := reader.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, sql)
		_ = tx.Rollback(ctx)
		if err == nil {
			t.Errorf("datamill_reader may %q", sql)
		}
	}
}

// TestComposeRolesScript runs the postgres container's
// deploy/postgres/initdb/05-roles.sh as the image runs it (psql as the
// superuser), twice, with the passwords of a `datamill secrets` directory,
// and checks what each role may do: log in with its SCRAM password (the
// URL of its secret file), the owner alone create in the public schema,
// the loader alone create temporary tables, PUBLIC nothing.
func TestComposeRolesScript(t *testing.T) {
	secrets := t.TempDir()
	if _, err := makeSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	admin := testkit.Postgres(t)
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PGHOST="+cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port),
		"POSTGRES_USER="+cfg.User, "POSTGRES_DB="+cfg.Database, "DATAMILL_SECRETS="+secrets)
	if cfg.Password != "" {
		env = append(env, "PGPASSWORD="+cfg.Password)
	}
	if u, err := url.Parse(admin); err == nil {
		for k, v := range map[string]string{"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT"} {
			if q := u.Query().Get(k); q != "" {
				env = append(env, v+"="+q)
			}
		}
	}
	script := deployFile(t, "deploy/postgres/initdb/05-roles.sh")
	for range 2 { // running it again changes nothing
		cmd := exec.CommandContext(ctx, "sh", script)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}

	db, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	for _, role := range composeRoles {
		name := "datamill_" + role
		var login, super, createDB, createRole, scram, connect, temp, create bool
		err := db.QueryRow(ctx, `select rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolpassword like 'SCRAM-SHA-256$%',
				has_database_privilege($1, current_database(), 'CONNECT'), has_database_privilege($1, current_database(), 'TEMP'),
				has_schema_privilege($1, 'public', 'CREATE')
			from pg_authid where rolname = $1`, name).Scan(&login, &super, &createDB, &createRole, &scram, &connect, &temp, &create)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !login || super || createDB || createRole || !scram || !connect {
			t.Errorf("%s: login %v, superuser %v, createdb %v, createrole %v, SCRAM password %v, CONNECT %v; want a login with a SCRAM password, CONNECT and nothing more",
				name, login, super, createDB, createRole, scram, connect)
		}
		if temp != (role == "loader") {
			t.Errorf("%s: TEMP on the database is %v, want it for the loader alone", name, temp)
		}
		if create != (role == "owner") {
			t.Errorf("%s: CREATE on schema public is %v, want it for the owner alone", name, create)
		}
	}
	var connect, temp, create bool
	if err := db.QueryRow(ctx, `select has_database_privilege('public', current_database(), 'CONNECT'),
			has_database_privilege('public', current_database(), 'TEMP'), has_schema_privilege('public', 'public', 'CREATE')`).
		Scan(&connect, &temp, &create); err != nil {
		t.Fatal(err)
	}
	if connect || temp || create {
		t.Errorf("PUBLIC: CONNECT %v, TEMP %v, CREATE on public %v; want none", connect, temp, create)
	}

	// Each role logs in with the URL of its secret file, pointed at this
	// cluster, and does what it may.
	as := func(role string) *pgx.Conn {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(secrets, "db_"+role+"_url"))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(string(data))
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Copy()
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
		conn, err := pgx.ConnectConfig(ctx, c)
		if err != nil {
			t.Fatalf("connect as %s: %v", c.User, err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	for _, tc := range []struct {
		role, sql string
		allowed   bool
	}{
		{"owner", "create table compose_roles_check (x int)", true},
		{"loader", "create table compose_roles_loader (x int)", false},
		{"loader", "create temporary table staging (x int)", true},
		{"scorer", "create temporary table staging (x int)", false},
		{"reader", "create table compose_roles_reader (x int)", false},
	} {
		_, err := as(tc.role).Exec(ctx, tc.sql)
		if allowed := err == nil; allowed != tc.allowed {
			t.Errorf("datamill_%s: %q: %v, want allowed %v", tc.role, tc.sql, err, tc.allowed)
		}
	}
}

// TestComposeKafkaRecipe runs compose's Kafka as compose would, outside
// Docker: deploy/kafka/start.sh with the kafka service's environment, on
// Apache Kafka's jars (scripts/kafka/broker.sh fetch) and a `datamill
// secrets` directory, its addresses moved to free ports of 127.0.0.1.
// Then the init job, with its environment, creates the principals and the
// topics as the admin, and the extractor, with its environment, may write
// raw.users and not clean.users; the host's listener takes the admin,
// a plaintext client gets nothing, and the service's healthcheck passes.
func TestComposeKafkaRecipe(t *testing.T) {
	if _, err := exec.LookPath("java"); err != nil {
		testkit.Unavailable(t, "java 17 or newer, for Apache Kafka")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(root, "scripts/kafka/broker.sh"), "fetch").CombinedOutput(); err != nil {
		testkit.Unavailable(t, fmt.Sprintf("the Kafka jars (scripts/kafka/broker.sh fetch: %v %s)", err, out))
	}
	lib := filepath.Join(root, ".cache/kafka/lib")
	project, _ := loadCompose(t)
	secrets, dir := t.TempDir(), t.TempDir()
	if _, err := makeSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	// The image's bin/ scripts, as the jars run them.
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for script, class := range map[string]string{
		"kafka-storage.sh": "kafka.tools.StorageTool", "kafka-server-start.sh": "kafka.Kafka",
		"kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
	} {
		body := fmt.Sprintf("#!/bin/sh\nexec java -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp '%s/*' %s \"$@\"\n", lib, class)
		if err := os.WriteFile(filepath.Join(home, "bin", script), []byte(body), 0o755); err != nil { // #nosec G306 -- a script of the test
			t.Fatal(err)
		}
	}
	internal, controller, external := freePort(t), freePort(t), freePort(t)
	moved := strings.NewReplacer(
		"kafka:9092", "127.0.0.1:"+internal, "://:9092", "://127.0.0.1:"+internal,
		"kafka:9093", "127.0.0.1:"+controller, "://:9093", "://127.0.0.1:"+controller,
		"localhost:9094", "localhost:"+external, "://:9094", "://127.0.0.1:"+external,
		"/run/secrets/", secrets+"/", "/run/secrets", secrets,
		"/var/lib/kafka/data", filepath.Join(dir, "data"), "/tmp/kafka", filepath.Join(dir, "config"),
	)
	environ := func(service string, extra ...string) []string {
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		for k, v := range project.Services[service].Environment {
			env = append(env, k+"="+moved.Replace(deref(v)))
		}
		return append(env, extra...)
	}

	var log strings.Builder
	broker := exec.Command("bash", filepath.Join(root, "deploy/kafka/start.sh")) // #nosec G204 -- the checkout's own script
	broker.Env = environ("kafka", "KAFKA_HOME="+home)
	broker.Stdout, broker.Stderr = &log, &log
	proc := startProcess(t, broker, syscall.SIGTERM, 30*time.Second)

	// clientConfig reads a service's KAFKA_* variables as it does.
	clientConfig := func(env []string) kafka.Config {
		t.Helper()
		cfg, err := config.Parse[struct{ Kafka kafka.Config }](env)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Kafka
	}
	// The init job, as the admin, once the broker answers.
	initEnv := slices.DeleteFunc(environ("init", "DATABASE_URL="+testkit.Postgres(t)), func(kv string) bool {
		return strings.HasPrefix(kv, "DATABASE_URL_FILE=")
	})
	admin, err := kafka.NewClient(clientConfig(initEnv), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	deadline := time.Now().Add(120 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := admin.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-proc.done:
			t.Fatalf("the broker exited (%v):\n%s", proc.err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker does not take the admin after 120 s: %v\n%s", err, log.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The kafka service's healthcheck, as the admin.
	check := project.Services["kafka"].HealthCheck
	if check == nil || len(check.Test) != 2 || check.Test[0] != "CMD-SHELL" {
		t.Fatalf("kafka: healthcheck %v, want a CMD-SHELL", check)
	}
	health := exec.Command("sh", "-c", strings.ReplaceAll(moved.Replace(check.Test[1]), "/opt/kafka/", home+"/")) // #nosec G204 -- compose's own healthcheck
	health.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := health.CombinedOutput(); err != nil {
		t.Errorf("kafka's healthcheck fails: %v\n%s", err, out)
	}

	var out strings.Builder
	if err := run(t.Context(), []string{"init"}, initEnv, &out, io.Discard); err != nil {
		t.Fatalf("init: %v\n%s", err, log.String())
	}

	extractor, err := kafka.NewClient(clientConfig(environ("extractor")), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer extractor.Close()
	produce := func(topic string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		return extractor.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
	}
	if err := produce("raw.users"); err != nil {
		t.Errorf("the extractor producing to raw.users: %v", err)
	}
	if err := produce("clean.users"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("the extractor producing to clean.users: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// The host's listener: the admin lists the topics init made.
	host := clientConfig(initEnv)
	host.Brokers = []string{"localhost:" + external}
	hostClient, err := kafka.NewClient(host, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer hostClient.Close()
	topics, err := kadm.NewClient(hostClient).ListTopics(t.Context())
	if err != nil || !topics.Has("raw.users") {
		t.Errorf("the admin on the host's listener lists %v (%v), want raw.users", topics.Names(), err)
	}

	// A plaintext client is refused on every client listener.
	for _, port := range []string{internal, external} {
		plain, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:" + port))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		if err := plain.Ping(ctx); err == nil {
			t.Errorf("a plaintext client reaches the broker on %s", port)
		}
		cancel()
		plain.Close()
	}
}

// TestComposePostgresAuditsDDLAndRoles runs PostgreSQL from the machine's
// binaries with the audit settings of deploy/postgres/entrypoint.sh
// (pgaudit, the image's addition): a CREATE TABLE and a CREATE ROLE are
// AUDIT lines of the server's log, the role's password redacted; a read is
// not; a statement that fails, which may hold a password, is not logged.
func TestComposePostgresAuditsDDLAndRoles(t *testing.T) {
	bin := map[string]string{}
	for _, name := range []string{"initdb", "postgres", "pg_isready", "psql"} {
		path, err := exec.LookPath(name)
		if err != nil {
			testkit.Unavailable(t, "PostgreSQL's binaries on PATH: "+err.Error())
		}
		bin[name] = path
	}
	server, err := filepath.EvalSymlinks(bin["postgres"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(server)), "lib", "pgaudit.so")); err != nil {
		testkit.Unavailable(t, "pgaudit beside "+server+" (apt-get install postgresql-15-pgaudit)")
	}
	cred := postgresCredential(t)
	ctx := t.Context()
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin[name], args...) // #nosec G204 -- PostgreSQL's binaries
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
		return cmd
	}
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				t.Fatal(err)
			}
		}
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		giveTo(t, cred, d)
	}
	logFile := filepath.Join(dir, "postgres.log")
	writeOwned(t, logFile, nil, cred)

	// The entrypoint's settings of the audit (TLS and pg_hba.conf are
	// TestComposePostgresAcceptsTLSOnly's).
	script, err := os.ReadFile(deployFile(t, "deploy/postgres/entrypoint.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var settings []string
	for _, m := range regexp.MustCompile(`(?m)^\s*-c ([a-z_.]+)=(\S+?)\s*\\?$`).FindAllStringSubmatch(string(script), -1) {
		if strings.HasPrefix(m[1], "pgaudit.") || m[1] == "shared_preload_libraries" || m[1] == "log_min_error_statement" {
			settings = append(settings, "-c", m[1]+"="+m[2])
		}
	}
	if len(settings) == 0 {
		t.Fatal("deploy/postgres/entrypoint.sh sets no audit setting")
	}

	// A throwaway cluster, trusting its own socket alone.
	if out, err := asPostgres("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	srv := asPostgres("postgres", append([]string{
		"-D", data, "-c", "listen_addresses=", "-c", "port=" + port,
		"-c", "unix_socket_directories=" + sock,
	}, settings...)...)
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv.Stdout, srv.Stderr = f, f
	proc := startProcess(t, srv, syscall.SIGINT, 15*time.Second)
	readLog := func() string {
		b, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for asPostgres("pg_isready", "-h", sock, "-p", port).Run() != nil {
		select {
		case <-proc.done:
			t.Fatalf("postgres exited: %v\n%s", proc.err, readLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not ready after 60 s:\n%s", readLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	psql := func(sql string) error {
		return asPostgres("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", sock, "-p", port, "-U", "postgres", "-d", "postgres", "-c", sql).Run()
	}
	for _, sql := range []string{"create table audited (x int)", "create role auditee login password 'kept-secret'", "select count(*) from audited"} {
		if err := psql(sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := psql("create role auditee2 password 'failed-secret' nonsense"); err == nil {
		t.Fatal("a statement with a syntax error succeeded")
	}
	// The last statement's error is logged after the statements before
	// it: wait for it, then read what was logged.
	for !strings.Contains(readLog(), "nonsense") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	log := readLog()
	for _, want := range []string{"AUDIT: SESSION,1,1,DDL,CREATE TABLE", ",ROLE,CREATE ROLE,"} {
		if !strings.Contains(log, want) {
			t.Errorf("the server's log has no %q:\n%s", want, log)
		}
	}
	for _, leaked := range []string{"kept-secret", "failed-secret"} {
		if strings.Contains(log, leaked) {
			t.Errorf("the server's log holds the password %q:\n%s", leaked, log)
		}
	}
	if strings.Contains(log, "READ,SELECT") {
		t.Errorf("the server's log audits a read, want DDL and role changes alone:\n%s", log)
	}
}

// TestComposeCIOverrideNamesImagesOnly: make compose-test's override of
// docker-compose.yml (deploy/ci/compose.ci.yml) changes image names and
// build arguments alone, so that the stack it runs is the real one, and
// each image it names is one scripts/compose/images.sh builds.
func TestComposeCIOverrideNamesImagesOnly(t *testing.T) {
	data, err := os.ReadFile(deployFile(t, "deploy/ci/compose.ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var override struct {
		Services map[string]map[string]any `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &override); err != nil {
		t.Fatalf("compose.ci.yml: %v", err)
	}
	images, err := os.ReadFile(deployFile(t, "scripts/compose/images.sh"))
	if err != nil {
		t.Fatal(err)
	}
	project, _ := loadCompose(t)
	if len(override.Services) == 0 {
		t.Fatal("compose.ci.yml overrides no service")
	}
	for name, svc := range override.Services {
		if _, ok := project.Services[name]; !ok {
			t.Errorf("compose.ci.yml: %s is no service of docker-compose.yml", name)
		}
		for key, v := range svc {
			switch key {
			case "image":
				if !strings.Contains(string(images), "build "+v.(string)+" ") {
					t.Errorf("compose.ci.yml: %s's image %s is not built by scripts/compose/images.sh", name, v)
				}
			case "build":
				for bk, args := range v.(map[string]any) {
					if bk != "args" {
						t.Errorf("compose.ci.yml: %s sets build.%s; only build arguments may change", name, bk)
						continue
					}
					for arg, image := range args.(map[string]any) {
						if !strings.Contains(string(images), "build "+image.(string)+" ") {
							t.Errorf("compose.ci.yml: %s's %s %s is not built by scripts/compose/images.sh", name, arg, image)
						}
					}
				}
			default:
				t.Errorf("compose.ci.yml: %s sets %s; only image names and build arguments may change", name, key)
			}
		}
	}
	// The UIs that cannot be built here are the profile ui, which the
	// compose test leaves off; nothing else is in a profile.
	for name, svc := range project.Services {
		ui := name == "grafana" || name == "kafka-ui" || name == "pgadmin"
		if got := strings.Join(svc.Profiles, ","); (got == "ui") != ui || (!ui && got != "") {
			t.Errorf("%s: profiles %q, want %q", name, got, map[bool]string{true: "ui"}[ui])
		}
	}
}

// postgresCredential is the user postgres to run PostgreSQL's programs as
// when the test runs as root (PostgreSQL refuses root); nil otherwise.
func postgresCredential(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		testkit.Unavailable(t, "a postgres user to run PostgreSQL as: "+err.Error())
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)} // #nosec G115 -- uids and gids fit
}
