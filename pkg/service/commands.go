package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/logging"
	"github.com/datamill/datamill/pkg/pg"
)

// command runs the commands every service binary answers besides running:
// env, healthcheck, migrate and help. It reports false when args name none of them.
func command[C config.Configured](ctx context.Context, name string, args, environ []string, stdout io.Writer) (bool, error) {
	if len(args) < 2 {
		return false, nil
	}
	switch args[1] {
	case "env":
		asJSON := len(args) > 2 && args[2] == "--json"
		if len(args) > 2 && !asJSON || len(args) > 3 {
			return true, fmt.Errorf("usage: %s env [--json]", name)
		}
		return true, printVariables(stdout, config.Variables(new(C)), asJSON)
	case "healthcheck":
		path := "/healthz"
		switch {
		case len(args) == 3 && args[2] == "--ready":
			path = "/readyz"
		case len(args) > 2:
			return true, fmt.Errorf("usage: %s healthcheck [--ready]", name)
		}
		return true, healthcheck(ctx, environ, path)
	case "migrate":
		if len(args) > 2 {
			return true, fmt.Errorf("usage: %s migrate", name)
		}
		return true, migrateCommand[C](ctx, name, environ, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprintf(stdout, "usage: %s [command]\n\n"+
			"Without a command, %s runs until SIGINT or SIGTERM, configured by the\n"+
			"environment variables that `%s env` lists.\n\n"+
			"commands:\n"+
			"  env [--json]            the environment variables read, their defaults, which are required\n"+
			"  healthcheck [--ready]   exit 0 when the running process on ADMIN_ADDR is alive (ready)\n"+
			"  migrate                 apply the service's migrations and tables with DATABASE_OWNER_URL\n"+
			"                          (or DATABASE_URL), grant them to the datamill roles, and exit\n"+
			"  help                    this text\n", name, name, name)
		return true, nil
	}
	return false, nil
}

// printVariables lists vars as a table or as one JSON array.
func printVariables(w io.Writer, vars []config.Variable, asJSON bool) error {
	if asJSON {
		type variable struct {
			Name     string `json:"name"`
			Default  string `json:"default"`
			Required bool   `json:"required"`
		}
		out := make([]variable, len(vars))
		for i, v := range vars {
			out[i] = variable{v.Name, v.Default, v.Required}
		}
		return json.NewEncoder(w).Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT")
	for _, v := range vars {
		def := fmt.Sprintf("%q", v.Default)
		if v.Required {
			def = "(required)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", v.Name, def)
	}
	return tw.Flush()
}

// healthcheck asks the process whose admin address is ADMIN_ADDR, on this
// host, for path. It is what container healthchecks run, as the images hold no other
// program that could.
func healthcheck(ctx context.Context, environ []string, path string) error {
	svc, err := config.Parse[config.Service](environ)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(svc.AdminAddr)
	if err != nil {
		return fmt.Errorf("ADMIN_ADDR %q: %w", svc.AdminAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", url, resp.Status, body)
	}
	return nil
}

// migrateCommand applies the Schema of a service whose configuration is a
// Migrator with the migration owner's URL, or DATABASE_URL when
// DATABASE_OWNER_URL is unset, and logs what it did on stdout. A service
// without tables has nothing to migrate.
func migrateCommand[C config.Configured](ctx context.Context, name string, environ []string, stdout io.Writer) error {
	cfg, err := config.Parse[C](environ)
	if err != nil {
		return err
	}
	m, ok := any(cfg).(Migrator)
	if !ok {
		fmt.Fprintf(stdout, "%s keeps no tables: nothing to migrate\n", name)
		return nil
	}
	svc := cfg.Block()
	log, err := logging.New(stdout, name, svc.LogLevel, svc.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	p := &Process{Name: name, Log: log}
	pcfg, s, err := m.Schema(p)
	if err != nil {
		return err
	}
	open := pg.Open
	if pcfg.OwnerURL != "" {
		open = pg.OpenOwner
	}
	pool, err := open(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate(ctx, p, pool, s, pcfg.OwnerURL != ""); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("migrated", zap.String("component", s.Component), zap.String("user", pool.Config().ConnConfig.User))
	return nil
}
