package idp

import (
	"fmt"
	"testing"
	"time"
)

// Issue 8 item 11: a flood of failures from many addresses (or of random
// client ids or usernames) must not grow the limiters without bound; the
// old map was swept only of idle entries, so fresh ones piled up.
func TestLimitersAreBounded(t *testing.T) {
	ls := newLimiters(1, 5)
	now := time.Now()
	for i := range maxLimiters + 1000 {
		ls.allow(fmt.Sprint("addr:", i), now)
	}
	if n := ls.size(); n > maxLimiters {
		t.Fatalf("%d limiters held, at most %d allowed", n, maxLimiters)
	}
}
