package revocation_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp/revocation"
)

// recorder is a Cache that reports what it is told on a channel.
type recorder struct {
	name string
	got  chan string
}

func (r recorder) Invalidate(hashes []string) {
	r.got <- r.name + " invalidate " + strings.Join(hashes, ",")
}
func (r recorder) Flush() { r.got <- r.name + " flush" }

// fakeNotices publishes onto its own channel, and Listen delivers what is
// sent to notices ("" is a lost connection: onReset).
type fakeNotices struct {
	published  chan []string
	notices    chan string
	publishErr error
}

func (n *fakeNotices) Publish(_ context.Context, hashes []string) error {
	n.published <- hashes
	return n.publishErr
}

func (n *fakeNotices) Listen(ctx context.Context, onRevoked func([]string), onReset func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case h := <-n.notices:
			if h == "" {
				onReset()
			} else {
				onRevoked(strings.Fields(h))
			}
		}
	}
}

func next[T any](t *testing.T, c chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived")
		var zero T
		return zero
	}
}

// Issue 9: the revocation fan-out, moved out of cmd/ficus. A revocation
// made here reaches the local caches and the other instances; one heard
// from any instance reaches the remote caches; a lost connection flushes
// them; Run ends with its context.
func TestFanout(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	stage, provider := recorder{"stage", got}, recorder{"provider", got}
	n := &fakeNotices{published: make(chan []string, 1), notices: make(chan string)}
	var logs bytes.Buffer
	f := &revocation.Fanout{Local: []revocation.Cache{stage}, Remote: []revocation.Cache{stage, provider}, Notices: n,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}

	f.Revoked([]string{"h1", "h2"})
	if g := next(t, got); g != "stage invalidate h1,h2" {
		t.Fatalf("local: %s", g)
	}
	if p := next(t, n.published); fmt.Sprint(p) != "[h1 h2]" {
		t.Fatalf("published %v", p)
	}
	if len(got) != 0 {
		t.Fatalf("a remote cache heard a local revocation: %s", <-got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	n.notices <- "h3 h4"
	for _, want := range []string{"stage invalidate h3,h4", "provider invalidate h3,h4"} {
		if g := next(t, got); g != want {
			t.Fatalf("got %q, want %q", g, want)
		}
	}
	n.notices <- ""
	for _, want := range []string{"stage flush", "provider flush"} {
		if g := next(t, got); g != want {
			t.Fatalf("got %q, want %q", g, want)
		}
	}
	cancel()
	next(t, done)

	n.publishErr = errors.New("connection refused")
	f.Revoked([]string{"h5"})
	next(t, got)
	next(t, n.published)
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("failed publish not logged: %s", logs.String())
	}
}

func TestFanoutAlone(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	f := &revocation.Fanout{Local: []revocation.Cache{revocation.Funcs{
		InvalidateFunc: func(h []string) { got <- "invalidate " + strings.Join(h, ",") },
		FlushFunc:      func() { got <- "flush" },
	}}}
	f.Revoked([]string{"h1"})
	if g := next(t, got); g != "invalidate h1" {
		t.Fatal(g)
	}
	done := make(chan struct{})
	go func() { defer close(done); f.Run(context.Background()) }() // returns at once without Notices
	next(t, done)
}
