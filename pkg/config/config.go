// Package config parses a service's configuration from its environment.
//
// Every datamill service describes its configuration as one struct holding
// the shared blocks as named fields (Kafka kafka.Config, Registry
// serde.Config, Postgres pg.Config) plus config.Service embedded, next to its
// own variables, which carry the service's prefix. It is parsed once, in run,
// with Parse. Every variable either has a default or is required; all
// problems are reported together, naming the variables to fix.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Service is the block every datamill process shares.
type Service struct {
	// LogLevel is the minimum level logged: debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is json (default, for machines) or console (for people).
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
	// AdminAddr is the operator's address, where /metrics, /healthz,
	// /readyz and, with AdminPprof, /debug/pprof/ are served: loopback
	// unless set otherwise.
	AdminAddr string `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9090"`
	// AdminPprof serves Go's profiles on AdminAddr.
	AdminPprof bool `env:"ADMIN_PPROF" envDefault:"false"`
	// Datasets lists the datasets this process handles.
	Datasets []string `env:"DATASETS" envDefault:"users" envSeparator:","`
	// RunID labels this run of the pipeline in eco samples and reports.
	RunID string `env:"RUN_ID" envDefault:"default"`
	// EcoInterval is how often the process publishes what it used to
	// eco.samples.
	EcoInterval time.Duration `env:"ECO_SAMPLE_INTERVAL" envDefault:"5s"`
}

// Loopback reports whether addr, host:port, listens on loopback only
// (127.0.0.0/8, ::1, localhost); an empty host is every interface.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Block returns the shared block; a configuration that embeds Service
// gets it as a method, which Configured asks for.
func (s Service) Block() Service { return s }

// Configured is a service configuration that embeds Service.
type Configured interface {
	Block() Service
}

// Validator is implemented by configurations with cross-field rules.
type Validator interface {
	Validate() error
}

// Parse fills a T from environ (KEY=VALUE pairs, as os.Environ returns them).
// Variables without a default are required. When T implements Validator,
// Validate runs after parsing.
//
// A secret variable V (tagged `secret:"true"`, or whose name SecretName
// marks) may come from a file instead: V_FILE names it, and V is the file's
// content less one trailing newline. Setting both is an error. A
// configuration that declares V_FILE itself reads that file its own way.
func Parse[T any](environ []string) (T, error) {
	var cfg T
	m := ToMap(environ)
	if err := readSecretFiles(reflect.TypeOf(cfg), m); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	err := env.ParseWithOptions(&cfg, env.Options{
		Environment:     m,
		RequiredIfNoDef: true,
	})
	if err != nil {
		return cfg, fmt.Errorf("configuration: %w", nameVariables(err, reflect.TypeOf(cfg)))
	}
	if err := validate(reflect.ValueOf(&cfg)); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// readSecretFiles sets each secret variable of t whose V_FILE is set in m to
// the content of that file, one trailing newline (an editor's, or echo's)
// trimmed, and joins the errors: both V and V_FILE set, a file unreadable.
// An empty variable counts as unset, as compose passes `V=${V:-}` along.
// The errors name the variables and paths, never a file's content.
func readSecretFiles(t reflect.Type, m map[string]string) error {
	declared := map[string]bool{}
	for _, v := range Variables(reflect.New(t).Interface()) {
		declared[v.Name] = true
	}
	var errs []error
	for _, name := range secretVariables(t) {
		path := m[name+"_FILE"]
		if path == "" || declared[name+"_FILE"] {
			continue
		}
		if m[name] != "" {
			errs = append(errs, fmt.Errorf("%s and %s_FILE are both set: give one", name, name))
			continue
		}
		b, err := os.ReadFile(path) // #nosec G304 -- the path the operator gives in V_FILE
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
			continue
		}
		v := strings.TrimSuffix(string(b), "\n")
		m[name] = strings.TrimSuffix(v, "\r")
	}
	return errors.Join(errs...)
}

// secretVariables lists the secret variables of the struct type t and of
// the structs it holds, as isSecret tells them.
func secretVariables(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		switch {
		case name == "":
			names = append(names, secretVariables(f.Type)...)
		case isSecret(f, name):
			names = append(names, name)
		}
	}
	return names
}

// validate runs Validate on the struct v points to and on every struct field
// inside it, depth first, and joins the errors. Shared blocks are held as
// named fields (Kafka kafka.Config), so their Validate methods are never
// promoted into, or hidden by, the service's own.
func validate(v reflect.Value) error {
	s := v.Elem()
	if s.Kind() != reflect.Struct {
		return nil
	}
	var errs []error
	for i := range s.NumField() {
		f := s.Field(i)
		if f.Kind() == reflect.Struct && s.Type().Field(i).IsExported() && !s.Type().Field(i).Anonymous {
			errs = append(errs, validate(f.Addr()))
		}
	}
	if val, ok := v.Interface().(Validator); ok {
		errs = append(errs, val.Validate())
	}
	return errors.Join(errs...)
}

// nameVariables rewrites env's parse errors, which name the Go field, so that
// they name the environment variable the user has to fix.
func nameVariables(err error, t reflect.Type) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if name := variableOf(t, pe.Name); name != "" {
				e = fmt.Errorf("%s: %w", name, pe.Err)
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// variableOf returns the environment variable of the field called field in t
// or in the structs it embeds.
func variableOf(t reflect.Type, field string) string {
	for _, v := range Variables(reflect.New(t).Interface()) {
		if v.Field == field {
			return v.Name
		}
	}
	return ""
}

// ToMap turns KEY=VALUE pairs into a map; later pairs win.
func ToMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

// Redacted returns cfg's fields as a flat map for logging, with the values of
// fields tagged `secret:"true"` (or whose variable names a secret) replaced.
func Redacted(cfg any) map[string]any {
	out := map[string]any{}
	redact(reflect.ValueOf(cfg), out)
	return out
}

func redact(v reflect.Value, out map[string]any) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			redact(v.Field(i), out)
			continue
		}
		val := v.Field(i).Interface()
		switch x := val.(type) {
		case string:
			val = RedactURL(x)
		case []string:
			list := make([]string, len(x))
			for i, s := range x {
				list[i] = RedactURL(s)
			}
			val = list
		}
		if isSecret(f, name) && !v.Field(i).IsZero() {
			val = "[redacted]"
		}
		out[name] = val
	}
}

// RedactURL is s with the password of a URL it holds replaced by "xxxxx"
// (http://user:xxxxx@host), for logs and errors; any other s as it is.
func RedactURL(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

func isSecret(f reflect.StructField, name string) bool {
	return f.Tag.Get("secret") == "true" || SecretName(name)
}

// SecretName tells whether a variable's name says it holds a secret: it
// contains PASSWORD, SECRET or TOKEN.
func SecretName(name string) bool {
	for _, word := range []string{"PASSWORD", "SECRET", "TOKEN"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// Variable describes one environment variable of a configuration.
type Variable struct {
	Name     string
	Field    string
	Default  string
	Required bool
}

// Variables lists the environment variables a configuration struct reads,
// in declaration order. Tests and docs use it so that lists of variables are
// derived from the structs instead of written by hand.
func Variables(cfg any) []Variable {
	var vars []Variable
	collect(reflect.TypeOf(cfg), &vars)
	return vars
}

func collect(t reflect.Type, vars *[]Variable) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			collect(f.Type, vars)
			continue
		}
		def, hasDef := f.Tag.Lookup("envDefault")
		*vars = append(*vars, Variable{Name: name, Field: f.Name, Default: def, Required: !hasDef})
	}
}
