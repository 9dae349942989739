package waittest_test

import (
	"net/http"
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

func TestRecvAndReturns(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 7
	if got := waittest.Recv(t, "a value", ch); got != 7 {
		t.Fatalf("Recv = %d, want 7", got)
	}
	ran := false
	waittest.Returns(t, "a quick call", func() { ran = true })
	if !ran {
		t.Fatal("Returns did not run f")
	}
}

func TestHanging(t *testing.T) {
	t.Parallel()
	url, asked, release := waittest.Hanging(t)
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	waittest.Recv(t, "the request", asked)
	select {
	case <-answered:
		t.Fatal("answered before release")
	default:
	}
	release()
	if err := waittest.Recv(t, "the answer after release", answered); err != nil {
		t.Fatal(err)
	}
}
