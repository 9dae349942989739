// Package waittest lets a test wait for something that happens elsewhere
// (another goroutine, the binary, PostgreSQL) by polling a condition until
// a deadline, instead of sleeping for a guessed while. Where the code under
// test offers a channel or a callback, a test waits on that instead; this
// is for events that can only be observed: a log line, a counter, a row, an
// HTTP answer.
//
// It serves the tests of every package, so it belongs to none of them; it
// sits beside strangler/pgtest for the reason given in strangler/pgmigrate.
package waittest

import (
	"testing"
	"time"
)

// Interval is how often Until and For check their condition.
const Interval = 10 * time.Millisecond

// Patience is how long For waits: long enough that only a hang, never a
// slow machine, reaches it.
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
