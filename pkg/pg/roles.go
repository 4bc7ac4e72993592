package pg

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The roles of a datamill database. Roles are the cluster's, their
// grants the database's.
const (
	// RoleOwner owns every table and runs every DDL statement: the
	// migration owner, a LOGIN role that is no superuser.
	RoleOwner = "datamill_owner"
	// RoleLoader writes the dataset tables and its ledger.
	RoleLoader = "datamill_loader"
	// RoleScorer reads the dataset tables and writes predictions.
	RoleScorer = "datamill_scorer"
	// RoleEcometer writes the eco tables.
	RoleEcometer = "datamill_ecometer"
	// RoleLake writes the lake's manifest and appends to its audit.
	RoleLake = "datamill_lake"
	// RoleReader reads everything and writes nothing: Grafana, the report.
	RoleReader = "datamill_reader"
)

// Roles are every datamill role, the owner first.
func Roles() []string {
	return []string{RoleOwner, RoleLoader, RoleScorer, RoleEcometer, RoleLake, RoleReader}
}

// serviceRoles are the roles that connect to read or write, not to change
// the schema.
func serviceRoles() []string { return Roles()[1:] }

// Kind is what a table is for, which decides who may do what with it.
type Kind string

// The kinds of tables.
const (
	// Dataset is a dataset's table, created by the loader from the
	// dataset's clean schema.
	Dataset Kind = "dataset"
	// View is a dataset's declared view.
	View Kind = "view"
	// LoaderLedger is the loader's applied_events.
	LoaderLedger Kind = "loader ledger"
	// Predictions is a dataset's predictions table, the scorer's.
	Predictions Kind = "predictions"
	// Scorer is a table of the scorer's own: drift, its model registry.
	Scorer Kind = "scorer"
	// Ecometer is a table of the ecometer's.
	Ecometer Kind = "ecometer"
	// LakeObjects is the lake's manifest.
	LakeObjects Kind = "lake objects"
	// LakeAudit is the lake's append-only audit of S3 calls.
	LakeAudit Kind = "lake audit"
	// Migrations is datamill_migrations, read by every service to check
	// that nothing is pending.
	Migrations Kind = "migrations"
	// BatchAudit is datamill_batches, the append-only audit of the batches
	// written.
	BatchAudit Kind = "batch audit"
)

// grants are the privileges of each kind of table, by role. The owner
// owns every table and needs none; the reader may select everything.
// Nothing grants DELETE or TRUNCATE: no service's code deletes a row of
// these tables (the loader truncates its temporary staging tables, which
// are its own, on TEMP).
var grants = map[Kind]map[string]string{
	// The loader's merge is INSERT … ON CONFLICT DO UPDATE, which needs
	// SELECT for the conflict target; the scorer reads to score.
	Dataset:      {RoleLoader: "select, insert, update", RoleScorer: "select", RoleReader: "select"},
	View:         {RoleReader: "select"},
	LoaderLedger: {RoleLoader: "select, insert", RoleReader: "select"},
	// The scorer inserts ON CONFLICT DO NOTHING and reads the predictions
	// already there.
	Predictions: {RoleScorer: "select, insert", RoleReader: "select"},
	Scorer:      {RoleScorer: "select, insert", RoleReader: "select"},
	// eco_stage_totals is added to with INSERT … ON CONFLICT DO UPDATE.
	Ecometer:    {RoleEcometer: "select, insert, update", RoleReader: "select"},
	LakeObjects: {RoleLake: "select, insert", RoleReader: "select"},
	LakeAudit:   {RoleLake: "insert", RoleReader: "select"},
	Migrations: {
		RoleLoader: "select", RoleScorer: "select", RoleEcometer: "select", RoleLake: "select", RoleReader: "select",
	},
	BatchAudit: {RoleLoader: "insert", RoleScorer: "insert", RoleEcometer: "insert", RoleReader: "select"},
}

// Tables are tables by kind.
type Tables map[string]Kind

// Grant gives the datamill roles exactly the privileges of each table's
// kind, revoking any other they had on it, in one transaction. Roles that
// do not exist are left out, so that a deployment with one role for
// everything is granted nothing. Only the tables' owner (or a superuser)
// may grant; Grant is what changing the schema ends with.
func Grant(ctx context.Context, pool *pgxpool.Pool, tables Tables) error {
	if len(tables) == 0 {
		return nil
	}
	rows, err := pool.Query(ctx, `select rolname from pg_roles where rolname = any ($1)`, serviceRoles())
	if err != nil {
		return fmt.Errorf("read the datamill roles: %w", err)
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read the datamill roles: %w", err)
	}
	if len(existing) == 0 {
		return nil
	}
	slices.Sort(existing)
	return InTx(ctx, pool, func(tx pgx.Tx) error {
		// Services starting together grant on the same tables
		// (datamill_migrations, datamill_batches), and one may create a
		// foreign key to a table another grants on.
		if err := LockSchema(ctx, tx); err != nil {
			return fmt.Errorf("grant: %w", err)
		}
		for _, table := range slices.Sorted(maps.Keys(tables)) {
			kind := tables[table]
			byRole, ok := grants[kind]
			if !ok {
				return fmt.Errorf("grant on %s: no grants for tables of kind %q", table, kind)
			}
			name := pgx.Identifier{table}.Sanitize()
			stmts := []string{fmt.Sprintf("revoke all on %s from %s", name, strings.Join(existing, ", "))}
			for _, role := range existing {
				if privs, ok := byRole[role]; ok {
					stmts = append(stmts, fmt.Sprintf("grant %s on %s to %s", privs, name, role))
				}
			}
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("grant on %s (%s): %w", table, kind, err)
				}
			}
		}
		return nil
	})
}

// Provision creates the datamill roles, or updates those that exist, with
// the passwords given by role name (a role without one gets none, and
// cannot log in with a password), and sets what they may do in the
// database pool is connected to: PUBLIC loses its rights on the database
// and on the schema public (TEMP among them), every role may connect and
// use the schema, only the owner may create in it and only the loader
// may create temporary tables (its staging tables). Provision needs a
// superuser (or a role with CREATEROLE that owns the database) and is
// idempotent. It locks its database only: two databases of one cluster
// provisioned at the same moment may collide creating a role, and the
// second is to be run again. Passwords are sent as SCRAM-SHA-256 verifiers computed here,
// so that no password reaches the server or its log.
func Provision(ctx context.Context, superuser *pgxpool.Pool, passwords map[string]string) error {
	for role := range passwords {
		if !slices.Contains(Roles(), role) {
			return fmt.Errorf("provision: %q is no datamill role (%s)", role, strings.Join(Roles(), ", "))
		}
	}
	return InTx(ctx, superuser, func(tx pgx.Tx) error {
		// Roles are the cluster's: two databases provisioned at once
		// would race to create them.
		if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock(hashtext('datamill_roles'))`); err != nil {
			return fmt.Errorf("provision: lock roles: %w", err)
		}
		for _, role := range Roles() {
			var exists bool
			if err := tx.QueryRow(ctx, `select exists (select 1 from pg_roles where rolname = $1)`, role).Scan(&exists); err != nil {
				return fmt.Errorf("provision role %s: %w", role, err)
			}
			verb := "create"
			if exists {
				verb = "alter"
			}
			stmt := fmt.Sprintf("%s role %s login nosuperuser nocreatedb nocreaterole noreplication", verb, role)
			if pw, ok := passwords[role]; ok {
				v, err := ScramVerifier(pw)
				if err != nil {
					return fmt.Errorf("provision role %s: %w", role, err)
				}
				stmt += " password " + quote(v)
			}
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("provision role %s: %w", role, err)
			}
		}
		var db string
		if err := tx.QueryRow(ctx, `select current_database()`).Scan(&db); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
		dbName := pgx.Identifier{db}.Sanitize()
		all := strings.Join(Roles(), ", ")
		for _, s := range []string{
			"revoke all on database " + dbName + " from public",
			"grant connect on database " + dbName + " to " + all,
			"grant temporary on database " + dbName + " to " + RoleLoader,
			"revoke all on schema public from public",
			"grant usage on schema public to " + all,
			"grant create on schema public to " + RoleOwner,
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("provision database %s: %s: %w", db, s, err)
			}
		}
		return nil
	})
}

// Adopt makes the migration owner the owner of the tables, views and
// materialized views of the schema public that pool's role owns: what a
// deployment created before it had roles, as its one (super)user, so
// that the owner can change and grant them. Sequences of identity
// columns follow their tables. Run by that role, after Provision.
func Adopt(ctx context.Context, pool *pgxpool.Pool) error {
	return InTx(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select c.relname, c.relkind from pg_class c
			where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
			and c.relowner = (select oid from pg_roles where rolname = current_user)
			order by c.oid`)
		if err != nil {
			return fmt.Errorf("adopt the tables: %w", err)
		}
		type relation struct {
			name string
			kind byte
		}
		var rels []relation
		var r relation
		if _, err := pgx.ForEachRow(rows, []any{&r.name, &r.kind}, func() error {
			rels = append(rels, r)
			return nil
		}); err != nil {
			return fmt.Errorf("adopt the tables: %w", err)
		}
		for _, r := range rels {
			what := "table"
			switch r.kind {
			case 'v':
				what = "view"
			case 'm':
				what = "materialized view"
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf("alter %s %s owner to %s", what, pgx.Identifier{r.name}.Sanitize(), RoleOwner)); err != nil {
				return fmt.Errorf("adopt %s %s: %w", what, r.name, err)
			}
		}
		return nil
	})
}

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// ScramVerifier returns the SCRAM-SHA-256 verifier of password as
// PostgreSQL stores it (RFC 5802, RFC 7677), with a random salt:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, base64.
// PostgreSQL takes a password in this form as the verifier itself. The
// password is used as it is, without SASLprep: the same as SASLprep for
// the printable ASCII passwords datamill generates.
func ScramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	return scramVerifier(password, salt, scramIterations)
}

func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// quote is a string literal of s.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// InsufficientPrivilege is the SQLSTATE of a statement refused for want
// of a privilege (insufficient_privilege), e.g. a service role creating a
// table.
const InsufficientPrivilege = "42501"

// Refused reports whether err is PostgreSQL refusing a statement for want
// of a privilege.
func Refused(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == InsufficientPrivilege
}
