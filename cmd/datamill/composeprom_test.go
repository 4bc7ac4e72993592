package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestComposePrometheusAsksForItsPassword starts a real Prometheus with the
// web configuration `datamill secrets` makes, as compose passes it
// (--web.config.file), and checks that it answers 401 without the
// password or with another, 200 with it, and that compose's healthcheck
// command, run against it, authenticates and passes.
func TestComposePrometheusAsksForItsPassword(t *testing.T) {
	needPrometheus(t)
	project, _ := loadCompose(t)
	prom := project.Services["prometheus"]
	var web string
	for _, arg := range prom.Command {
		if v, ok := strings.CutPrefix(arg, "--web.config.file=/run/secrets/"); ok {
			web = v
		}
	}
	if web == "" || prom.HealthCheck == nil || len(prom.HealthCheck.Test) != 2 || prom.HealthCheck.Test[0] != "CMD-SHELL" {
		t.Fatalf("prometheus: want --web.config.file of a secret and a CMD-SHELL healthcheck, got %v and %+v", prom.Command, prom.HealthCheck)
	}

	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if _, err := makeSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "web-config", filepath.Join(secrets, web)).CombinedOutput(); err != nil {
		t.Fatalf("promtool check web-config %s: %v\n%s", web, err, out)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  scrape_interval: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.CommandContext(t.Context(), "prometheus", "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--web.config.file="+filepath.Join(secrets, web), "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	password, err := os.ReadFile(filepath.Join(secrets, "prometheus_password"))
	if err != nil {
		t.Fatal(err)
	}
	status := func(user, pw string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/-/healthy", nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(60 * time.Second)
	for status("prometheus", string(password)) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus does not answer 200 with the password after 60 s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"without a password", "", ""},
		{"with another password", "prometheus", "not-the-password"},
	} {
		if got := status(tc.user, tc.password); got != http.StatusUnauthorized {
			t.Errorf("/-/healthy %s: %d, want 401", tc.name, got)
		}
	}

	// Compose's healthcheck, with this Prometheus' address and the
	// secrets' directory for /run/secrets.
	check := strings.NewReplacer("localhost:9090", addr, "/run/secrets/", secrets+"/").Replace(prom.HealthCheck.Test[1])
	if out, err := exec.CommandContext(t.Context(), "sh", "-c", check).CombinedOutput(); err != nil {
		t.Errorf("the healthcheck %q fails: %v\n%s", check, err, out)
	}
	if out, err := exec.CommandContext(t.Context(), "sh", "-c", strings.ReplaceAll(check, secrets+"/prometheus_password", os.DevNull)).CombinedOutput(); err == nil {
		t.Errorf("the healthcheck passes without the password: %s", out)
	}
}
