// Package legacytest stands in for a legacy monolith in tests of lazy
// credential migration: its user table in a real PostgreSQL database
// (strangler/pgtest) and its JSON login endpoint on a real HTTP server.
package legacytest

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ficus-gw/ficus/strangler/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"
)

// Query selects a user from the table DB makes.
const Query = "SELECT id, password_hash, customer_number, enabled, email FROM users WHERE username = $1"

// User is a row of the legacy user table.
type User struct {
	ID             int64
	Username       string
	Hash           string // Bcrypt or Django of the password
	CustomerNumber string
	Email          string
	Disabled       bool
}

// DB is a legacy database with a users table.
type DB struct {
	// DSN reaches the database.
	DSN  string
	Pool *pgxpool.Pool
}

// NewDB makes a fresh database with an empty users table, dropped when
// the test ends.
func NewDB(t testing.TB) *DB {
	t.Helper()
	db := &DB{DSN: pgtest.NewDatabase(t)}
	var err error
	if db.Pool, err = pgxpool.New(context.Background(), db.DSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Pool.Close)
	if _, err := db.Pool.Exec(context.Background(), `CREATE TABLE users (
		id bigint PRIMARY KEY, username text NOT NULL, password_hash text NOT NULL,
		customer_number text, enabled boolean NOT NULL DEFAULT true, email text)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// Add inserts users.
func (db *DB) Add(t testing.TB, users ...User) {
	t.Helper()
	for _, u := range users {
		if _, err := db.Pool.Exec(context.Background(),
			"INSERT INTO users (id, username, password_hash, customer_number, enabled, email) VALUES ($1, $2, $3, NULLIF($4, ''), $5, NULLIF($6, ''))",
			u.ID, u.Username, u.Hash, u.CustomerNumber, !u.Disabled, u.Email); err != nil {
			t.Fatal(err)
		}
	}
}

// Rows counts the users table's rows.
func (db *DB) Rows(t testing.TB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Bcrypt hashes pw with bcrypt at the cheapest cost, as PHP's
// password_hash and Rails' has_secure_password do (at higher costs).
func Bcrypt(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// Django hashes pw as Django's PBKDF2PasswordHasher does, with few
// iterations.
func Django(pw, salt string) string {
	k, _ := pbkdf2.Key(sha256.New, pw, []byte(salt), 1000, sha256.Size)
	return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", 1000, salt, base64.StdEncoding.EncodeToString(k))
}

// Monolith is a monolith's JSON login endpoint (URL; it answers on
// every path): POST with a form of username and password; 200 with
// {"user": {"id": ID, "customer": {"number": "..."}}, "email": "..."}
// when right, 401 when not.
type Monolith struct {
	URL string // the login endpoint
	// Calls counts the login requests it got.
	Calls atomic.Int64

	mu    sync.Mutex
	users map[string]User
	pw    map[string]string
}

// NewMonolith starts a monolith, closed when the test ends.
func NewMonolith(t testing.TB) *Monolith {
	t.Helper()
	m := &Monolith{users: map[string]User{}, pw: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Calls.Add(1)
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		name, pw := r.PostFormValue("username"), r.PostFormValue("password")
		m.mu.Lock()
		u, ok := m.users[name]
		right := ok && m.pw[name] == pw && !u.Disabled
		m.mu.Unlock()
		if !right {
			http.Error(w, `{"error":"bad credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"user": map[string]any{"id": u.ID, "customer": map[string]any{"number": u.CustomerNumber}}, "email": u.Email})
	}))
	t.Cleanup(srv.Close)
	m.URL = srv.URL + "/api/login"
	return m
}

// Add makes a user with a password.
func (m *Monolith) Add(u User, password string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[u.Username], m.pw[u.Username] = u, password
}

// DeadAddr is a loopback host:port where nothing listens: a socket bound
// to it but not listening, so a connection is refused at once and no
// test running in parallel can take the port until this one ends.
func DeadAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
