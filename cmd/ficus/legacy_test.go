package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/idp/legacy/legacytest"
	"golang.org/x/oauth2"
)

// Issue 10: `ficus serve` with idp.legacy_login migrates a user of the
// legacy database on their first login through the front door.
func TestServeMigratesLegacyUsers(t *testing.T) {
	t.Parallel()
	db := legacytest.NewDB(t)
	db.Add(t, legacytest.User{ID: 42, Username: "hal", Hash: legacytest.Bcrypt(t, "hals-old-password"), CustomerNumber: "C-42"})
	dsnFile := filepath.Join(t.TempDir(), "legacy-dsn")
	os.WriteFile(dsnFile, []byte(db.DSN), 0o600)
	cfg := pgConfig(t, "http://127.0.0.1:1", fmt.Sprintf(`idp:
  issuer: "http://ficus.test"
  allow_password: true
  legacy_login:
    postgres:
      dsn: file:%s
      query: %q
      hash_formats: [bcrypt]
`, dsnFile, legacytest.Query))
	code, out, errs := runCLI(t, "idp", "client", "create", "web", "--grant", "password", "--first-party", "--scope", "profile", "--config", cfg)
	if code != 0 {
		t.Fatal(errs)
	}
	secret := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)[1]
	data, _ := os.ReadFile(cfg)
	front, _, _ := testServer(t, string(data))
	conf := &oauth2.Config{ClientID: "web", ClientSecret: secret, Endpoint: oauth2.Endpoint{TokenURL: front + "/oauth2/token"}}
	ctx := context.Background()
	if _, err := conf.PasswordCredentialsToken(ctx, "hal", "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if _, err := conf.PasswordCredentialsToken(ctx, "hal", "hals-old-password"); err != nil {
		t.Fatal(err)
	}
	// The user is now ficus's: the legacy row can go and the login still works.
	if _, err := db.Pool.Exec(ctx, "DELETE FROM users"); err != nil {
		t.Fatal(err)
	}
	if _, err := conf.PasswordCredentialsToken(ctx, "hal", "hals-old-password"); err != nil {
		t.Fatalf("second login: %v", err)
	}
}

// A legacy query without the columns ficus reads stops the start, with
// the key named.
func TestServeRefusesAWrongLegacyQuery(t *testing.T) {
	t.Parallel()
	db := legacytest.NewDB(t)
	dsnFile := filepath.Join(t.TempDir(), "legacy-dsn")
	os.WriteFile(dsnFile, []byte(db.DSN), 0o600)
	cfg := writeConfig(t, fmt.Sprintf(`listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
routes: {file: routes.yaml}
idp:
  issuer: "http://ficus.test"
  legacy_login:
    postgres:
      dsn: file:%s
      query: "SELECT id, email FROM users WHERE username = $1"
      hash_formats: [bcrypt]
`, dsnFile))
	if errs := serveMustRefuse(t, cfg); !strings.Contains(errs, "idp.legacy_login.postgres.query: no column password_hash") {
		t.Fatalf("stderr: %s", errs)
	}
}
