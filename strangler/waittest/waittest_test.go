package waittest_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/waittest"
)

func TestUntil(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond) // the work being waited for
			n.Add(1)
		}
	}()
	if !waittest.Until(10*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatal("a condition that came true was not seen")
	}
	start := time.Now()
	if waittest.Until(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never held was reported true")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before the deadline", d)
	}
	calls := 0
	if !waittest.Until(0, func() bool { calls++; return true }) || calls != 1 {
		t.Fatalf("a condition true at once: %d calls", calls)
	}
}
