package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestCLIRegistrySignsInAsTheServices: a command's registry client takes
// the services' SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD_FILE,
// so that `datamill tail` decodes through a registry behind basic auth
// (compose's); without them the registry refuses it.
func TestCLIRegistrySignsInAsTheServices(t *testing.T) {
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, password, ok := r.BasicAuth(); !ok || user != "datamill" || password != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, `{"error_code":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write([]byte(`[]`))
	}))
	defer registry.Close()
	file := filepath.Join(t.TempDir(), "schema_registry_password")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	signedIn, err := cliRegistry(map[string]string{
		"SCHEMA_REGISTRY_URL": registry.URL, "SCHEMA_REGISTRY_USERNAME": "datamill", "SCHEMA_REGISTRY_PASSWORD_FILE": file,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := signedIn.Ping(t.Context()); err != nil {
		t.Errorf("with the services' login: %v", err)
	}
	anonymous, err := cliRegistry(map[string]string{"SCHEMA_REGISTRY_URL": registry.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := anonymous.Ping(t.Context()); err == nil {
		t.Error("without a login the registry answered")
	}
}
