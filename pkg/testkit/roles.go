package testkit

import (
	"context"
	"crypto/rand"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/datamill/datamill/pkg/pg"
)

// rolePasswords are the passwords of the datamill roles in this test
// binary: roles are the cluster's, shared by the tests' databases, so
// every test provisions them with the same ones.
var rolePasswords = sync.OnceValue(func() map[string]string {
	pw := map[string]string{}
	for _, role := range pg.Roles() {
		pw[role] = rand.Text()
	}
	return pw
})

// provisioning serialises Provision in this test binary: roles are the
// cluster's, and Provision's lock is its database's, so tests of two
// databases provisioning at once would collide creating one role.
var provisioning sync.Mutex

// Roles provisions the datamill roles (pg.Provision) in the database of
// dbURL, a superuser's URL such as Postgres returns, and returns a URL of
// that database for each role: dbURL with its user and password swapped.
func Roles(t testing.TB, dbURL string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pool, err := pg.Open(ctx, pg.Config{URL: dbURL, MaxConns: 1})
	if err != nil {
		t.Fatalf("provision the datamill roles: %v", err)
	}
	defer pool.Close()
	passwords := rolePasswords()
	provisioning.Lock()
	err = pg.Provision(ctx, pool, passwords)
	provisioning.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("the database URL does not parse: %v", err)
	}
	urls := map[string]string{}
	for role, pw := range passwords {
		r := *u
		r.User = url.UserPassword(role, pw)
		urls[role] = r.String()
	}
	return urls
}
