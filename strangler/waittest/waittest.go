// Package waittest lets a test wait for something that happens elsewhere
// (another goroutine, the binary, PostgreSQL) instead of sleeping for a
// guessed while: on a channel (Recv), on a call returning (Returns), or,
// for events that can only be observed — a log line, a counter, a row, an
// HTTP answer — by polling a condition until a deadline (Until, For). Its
// Hanging server is the other side: something the code under test waits on.
//
// It serves the tests of every package, so it belongs to none of them; it
// sits beside strangler/pgtest for the reason given in strangler/pgmigrate.
package waittest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Interval is how often Until and For check their condition.
const Interval = 10 * time.Millisecond

// Patience is how long For, Recv and Returns wait: long enough that only a
// hang, never a slow machine, reaches it.
const Patience = 30 * time.Second

// Until calls cond every Interval until it returns true or within has
// passed, and reports whether it returned true. It is for bounds that are
// the behaviour under test ("refused within a second"), and for waits whose
// failure the caller reports itself. cond runs on the caller's goroutine,
// so it may call t.Fatal.
func Until(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Interval)
	}
	return true
}

// For fails the test unless cond returns true within Patience; what names
// the awaited event in the failure ("the reload", "3 deliveries").
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Until(Patience, cond) {
		t.Fatalf("waited %v for %s", Patience, what)
	}
}

// Recv returns the next value sent on ch, and fails the test unless one
// comes within Patience; what names the awaited value in the failure.
func Recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Patience):
		t.Fatalf("waited %v for %s", Patience, what)
		var zero T
		return zero
	}
}

// Returns runs f on its own goroutine and fails the test unless f returns
// within Patience: it detects a hang, it measures nothing.
func Returns(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	Recv(t, what+" to return", done)
}

// Hanging starts an HTTP server that answers no request until release is
// called, at the latest when the test ends; asked receives once per
// request as it arrives (up to 100 unread).
func Hanging(t testing.TB) (url string, asked <-chan struct{}, release func()) {
	t.Helper()
	ch, done := make(chan struct{}, 100), make(chan struct{})
	release = sync.OnceFunc(func() { close(done) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first
	return srv.URL, ch, release
}
