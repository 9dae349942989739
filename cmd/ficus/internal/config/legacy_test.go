package config

import (
	"strings"
	"testing"
)

// Issue 10: every configuration example of the lazy credential migration
// section of docs/legacy-session-bridge.md is accepted (its DSNs are read
// by ficus serve only).
func TestLegacyLoginDocExamples(t *testing.T) {
	t.Parallel()
	examples := loadDocSectionExamples(t, "legacy-session-bridge.md", "Lazy credential migration")
	if len(examples) < 5 {
		t.Fatalf("%d YAML examples, want the 5 written", len(examples))
	}
	for i, c := range examples {
		if c == nil {
			continue
		}
		if l := c.IDP.LegacyLogin; l.HTTP == nil && l.Postgres == nil {
			t.Errorf("example %d configures no legacy login", i+1)
		}
	}
}

// Issue 10: idp.legacy_login takes exactly one legacy system, and every
// problem in it is reported with the line of its key.
func TestLegacyLoginChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, given string
		want        []string // empty: accepted
	}{
		{"http", `idp:
  legacy_login:
    http:
      url: https://monolith.internal/api/login
      user_id: /user/id
      claims: {email: /email}
`, nil},
		{"postgres", `idp:
  legacy_login:
    max_concurrent: 4
    postgres:
      dsn: env:LEGACY_DSN
      query: SELECT id, password_hash FROM users WHERE email = $1
      hash_formats: [bcrypt]
`, nil},
		{"both", `idp:
  legacy_login:
    http: {url: "https://m/login"}
    postgres: {dsn: env:X, query: "SELECT id, password_hash FROM u WHERE n = $1", hash_formats: [bcrypt]}
`, []string{":2: idp.legacy_login: set one of http and postgres, not both"}},
		{"neither", "idp: {legacy_login: {max_concurrent: 3}}\n", []string{":1: idp.legacy_login: set http or postgres"}},
		{"http problems on their lines", `idp:
  legacy_login:
    http:
      url: ftp://monolith/login
      body: xml
      success: redirect
      user_id: user/id
`, []string{
			":4: idp.legacy_login.http.url: must be an http:// or https:// URL",
			":5: idp.legacy_login.http.body: must be form or json",
			":3: idp.legacy_login.http.success_redirect: is required with success: redirect", // missing: its parent's line
			":6: idp.legacy_login.http.success: redirect answers have no JSON",
			":7: idp.legacy_login.http.user_id: \"user/id\" is not a JSON pointer",
		}},
		{"postgres problems on their lines", `idp:
  legacy_login:
    postgres:
      dsn: postgres://user:pw@legacy/db
      query: SELECT id, password_hash FROM users
      hash_formats: [md5]
      max_conns: -1
`, []string{
			":4: idp.legacy_login.postgres.dsn: " + errLiteralSecret,
		}},
		{"postgres problems on their lines, dsn a reference", `idp:
  legacy_login:
    postgres:
      dsn: env:LEGACY_DSN
      query: SELECT id, password_hash FROM users
      hash_formats: [md5]
      max_conns: -1
`, []string{
			":5: idp.legacy_login.postgres.query: must select by the username as $1",
			":6: idp.legacy_login.postgres.hash_formats: \"md5\" is not a supported format",
			":7: idp.legacy_login.postgres.max_conns: must be 0",
		}},
		{"postgres without dsn", "idp: {legacy_login: {postgres: {query: \"SELECT id, password_hash FROM u WHERE n = $1\", hash_formats: [bcrypt]}}}\n",
			[]string{"idp.legacy_login.postgres.dsn: is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.given, ForCheck)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "pw@legacy") {
				t.Errorf("the literal DSN is echoed: %v", err)
			}
		})
	}
}

// The legacy database's DSN is read by ficus serve only.
func TestLegacyDSNResolvedForServe(t *testing.T) {
	text := `routes: {file: routes.yaml}
idp:
  legacy_login:
    postgres: {dsn: env:FICUS_TEST_LEGACY_DSN, query: "SELECT id, password_hash FROM u WHERE n = $1", hash_formats: [bcrypt]}
`
	if _, err := load(t, text, ForIDP); err != nil {
		t.Fatalf("ForIDP reads the legacy DSN: %v", err)
	}
	if _, err := load(t, text, ForServe); err == nil || !strings.Contains(err.Error(), ":4: idp.legacy_login.postgres.dsn: environment variable FICUS_TEST_LEGACY_DSN is not set") {
		t.Fatalf("ForServe: %v", err)
	}
	t.Setenv("FICUS_TEST_LEGACY_DSN", "postgres://legacy/db")
	if _, err := load(t, text, ForServe); err != nil {
		t.Fatal(err)
	}
}
