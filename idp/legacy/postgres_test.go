package legacy_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/legacy"
	"github.com/ficus-gw/ficus/idp/legacy/legacytest"
	"github.com/ficus-gw/ficus/strangler/pgtest"
)

func newPostgres(t *testing.T, dsn string, c legacy.SQLConfig) *legacy.Postgres {
	t.Helper()
	p, err := legacy.NewPostgres(dsn, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestPostgresChecksStoredHashes(t *testing.T) {
	t.Parallel()
	db := legacytest.NewDB(t)
	db.Add(t,
		legacytest.User{ID: 1, Username: "php", Hash: "$2y$" + legacytest.Bcrypt(t, "php-pass")[4:], CustomerNumber: "C-1", Email: "php@example.com"},
		legacytest.User{ID: 2, Username: "django", Hash: legacytest.Django("django-pass", "NaCl1234")},
		legacytest.User{ID: 3, Username: "gone", Hash: legacytest.Bcrypt(t, "gone-pass"), Disabled: true},
		legacytest.User{ID: 4, Username: "md5", Hash: "5f4dcc3b5aa765d61d8327deb882cf99"},
	)
	p := newPostgres(t, db.DSN, legacy.SQLConfig{Query: legacytest.Query, HashFormats: []string{"bcrypt", "django_pbkdf2_sha256"}})
	ctx := context.Background()
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := p.CheckLegacy(ctx, "php", "php-pass")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "1" || u.CustomerNumber != "C-1" || u.Claims["email"] != "php@example.com" || len(u.Claims) != 1 {
		t.Fatalf("user = %+v", u)
	}
	u, err = p.CheckLegacy(ctx, "django", "django-pass")
	if err != nil || u.ID != "2" || u.CustomerNumber != "" || len(u.Claims) != 0 { // NULL columns are left out
		t.Fatalf("django: %+v, %v", u, err)
	}
	for _, tc := range []struct{ user, pw string }{{"php", "wrong"}, {"django", "wrong"}, {"gone", "gone-pass"}, {"nobody", "x"}} {
		if _, err := p.CheckLegacy(ctx, tc.user, tc.pw); !errors.Is(err, idp.ErrLegacyDenied) {
			t.Errorf("%s/%s: %v, want ErrLegacyDenied", tc.user, tc.pw, err)
		}
	}
	// A hash in no accepted format is not a wrong password: the operator
	// must hear of it (503), and nothing of the hash is in the error.
	_, err = p.CheckLegacy(ctx, "md5", "password")
	if err == nil || errors.Is(err, idp.ErrLegacyDenied) || strings.Contains(err.Error(), "5f4dcc3b5aa765") {
		t.Fatalf("md5: %v", err)
	}
}

func TestPostgresQueryChecked(t *testing.T) {
	t.Parallel()
	db := legacytest.NewDB(t)
	for _, tc := range []struct{ query, want string }{
		{"SELECT id, email FROM users WHERE username = $1", "no column password_hash"},
		{"SELECT password_hash FROM users WHERE username = $1", "no column id"},
		{"SELECT id, password_hash, email AS id FROM users WHERE username = $1", "the column id comes twice"},
		{"SELECT id, password_hash, 'yes' AS enabled FROM users WHERE username = $1", "enabled must be boolean"},
		{"SELECT id, password_hash FROM nosuchtable WHERE username = $1", "refuses it"},
		{"SELECT id, password_hash FROM users WHERE username = $1 AND $2::text IS NULL", "takes one parameter"},
	} {
		p, err := legacy.NewPostgres(db.DSN, legacy.SQLConfig{Query: tc.query, HashFormats: []string{"bcrypt"}}, nil)
		if err != nil {
			if strings.Contains(err.Error(), tc.want) {
				continue
			}
			t.Fatalf("%s: %v", tc.query, err)
		}
		err = p.Check(context.Background())
		if !errors.Is(err, legacy.ErrColumns) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrColumns with %q", tc.query, err, tc.want)
		}
		// A login with a wrong query is an error, never a denial.
		if _, err := p.CheckLegacy(context.Background(), "u", "p"); err == nil || errors.Is(err, idp.ErrLegacyDenied) {
			t.Errorf("%s: login got %v", tc.query, err)
		}
		p.Close()
	}
	for _, c := range []legacy.SQLConfig{
		{Query: "SELECT id, password_hash FROM users", HashFormats: []string{"bcrypt"}},
		{Query: legacytest.Query, HashFormats: []string{"sha1"}},
	} {
		if _, err := legacy.NewPostgres(db.DSN, c, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// The legacy database is only read: a query that would write is refused
// by the server, and the table is unchanged.
func TestPostgresIsReadOnly(t *testing.T) {
	t.Parallel()
	db := legacytest.NewDB(t)
	db.Add(t, legacytest.User{ID: 1, Username: "ann", Hash: legacytest.Bcrypt(t, "ann-pass")})
	p := newPostgres(t, db.DSN, legacy.SQLConfig{HashFormats: []string{"bcrypt"}, Query: `WITH w AS (
		INSERT INTO users (id, username, password_hash) VALUES (99, 'intruder', 'x') RETURNING id)
		SELECT id, password_hash FROM users WHERE username = $1`})
	_, err := p.CheckLegacy(context.Background(), "ann", "ann-pass")
	if err == nil || errors.Is(err, idp.ErrLegacyDenied) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("got %v", err)
	}
	if n := db.Rows(t); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

func TestPostgresStatementTimeoutAndOutage(t *testing.T) {
	t.Parallel()
	db := legacytest.NewDB(t)
	p := newPostgres(t, db.DSN, legacy.SQLConfig{HashFormats: []string{"bcrypt"}, StatementTimeout: 1e6, // 1ms
		Query: "SELECT id, password_hash FROM users, pg_sleep(10) WHERE username = $1"})
	_, err := p.CheckLegacy(context.Background(), "ann", "x")
	if err == nil || errors.Is(err, idp.ErrLegacyDenied) || !strings.Contains(err.Error(), "statement timeout") {
		t.Fatalf("got %v", err)
	}
	// A database that is not there is an outage, not a wrong password.
	u, _ := url.Parse(pgtest.NewDatabase(t))
	u.Path += "_missing"
	gone := u.String()
	p = newPostgres(t, gone, legacy.SQLConfig{HashFormats: []string{"bcrypt"}, Query: legacytest.Query})
	if _, err := p.CheckLegacy(context.Background(), "ann", "x"); err == nil || errors.Is(err, idp.ErrLegacyDenied) || errors.Is(err, legacy.ErrColumns) {
		t.Fatalf("missing database: %v", err)
	}
}
