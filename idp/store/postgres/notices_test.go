package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp/revocation"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/strangler/pgtest"
)

var _ revocation.Notices = postgres.Notices{}

// Issue 9: a revocation published by one instance is heard by another
// that listens on the same database.
func TestNoticesBetweenInstances(t *testing.T) {
	pool := pgtest.NewPool(t) // NOTIFY reaches every listening connection: one pool serves both ends
	ctx, cancel := context.WithCancel(context.Background())
	heard := make(chan []string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		postgres.Notices{Pool: pool}.Listen(ctx, func(h []string) { heard <- h }, func() {})
	}()
	t.Cleanup(func() { cancel(); <-done })
	// The listener's LISTEN may not be in place yet: publish until it hears.
	hashes := []string{"h1", "h2"}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if err := (postgres.Notices{Pool: pool}).Publish(ctx, hashes); err != nil {
			t.Fatal(err)
		}
		select {
		case h := <-heard:
			if fmt.Sprint(h) != "[h1 h2]" {
				t.Fatalf("heard %v", h)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("the other instance heard nothing")
		}
	}
}
