package adapters_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/stripe/stripe-go/v82/webhook"
)

// testInbox is what both inboxes offer: ingest's and delivery's parts.
type testInbox interface {
	adapters.Inserter
	adapters.Queue
}

// bothInboxes runs f on the PostgreSQL inbox and on the memory inbox.
func bothInboxes(t *testing.T, f func(t *testing.T, in testInbox)) {
	t.Run("postgres", func(t *testing.T) { _, st := newInbox(t); f(t, st) })
	t.Run("memory", func(t *testing.T) { f(t, inbox.NewMemory()) })
}

// countingTarget is a slow target that counts deliveries per event id
// (on arrival, before it answers) and refuses the first refuse[id]
// attempts of an event with 503.
type countingTarget struct {
	mu     sync.Mutex
	seen   map[string]int
	refuse map[string]int
	delay  time.Duration
}

func (c *countingTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(adapters.EventIDHeader)
	c.mu.Lock()
	c.seen[id]++
	fail := c.refuse[id] > 0
	c.refuse[id]--
	c.mu.Unlock()
	time.Sleep(c.delay) // a slow target, not a wait for an event
	if fail {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (c *countingTarget) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id]
}

func signedPost(t *testing.T, url, payload string) int {
	t.Helper()
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: secret}).Header
	req, _ := http.NewRequest("POST", url, strings.NewReader(payload))
	req.Header.Set("Stripe-Signature", sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Issue 8, item 13: with sync: true an event was delivered inline and
// also claimed by a worker, because it was inserted due at once: 5 events
// reached a slow target 10 times. Now the inline attempt holds the event's
// lease, and workers take it only when that attempt fails (or its lease
// ends).
func TestSyncModeDeliversEachEventOnce(t *testing.T) {
	bothInboxes(t, func(t *testing.T, q testInbox) {
		tg := &countingTarget{seen: map[string]int{}, refuse: map[string]int{"evt_fail": 1}, delay: 300 * time.Millisecond}
		target := httptest.NewServer(tg)
		defer target.Close()
		d := &adapters.Deliverer{Inbox: q, Workers: 4, Poll: 5 * time.Millisecond, BaseBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			Targets: map[string]adapters.Target{"stripe": {URL: target.URL, Token: staticToken}}}
		ctx, stop := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { d.Run(ctx); close(stopped) }()
		defer func() { stop(); <-stopped }()
		in := stripeIngest(q)
		in.Sync = d
		srv := httptest.NewServer(in)
		defer srv.Close()

		var wg sync.WaitGroup
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code := signedPost(t, srv.URL, fmt.Sprintf(`{"id":"evt_%d"}`, i)); code != http.StatusCreated {
					t.Errorf("evt_%d: sender got %d, want the target's 201", i, code)
				}
			}()
		}
		wg.Wait()
		// A failed inline attempt hands the event to the workers at once
		// (not after its lease): it is delivered by a worker, once more.
		if code := signedPost(t, srv.URL, `{"id":"evt_fail"}`); code != http.StatusServiceUnavailable {
			t.Fatalf("failing inline attempt: sender got %d, want the target's 503", code)
		}
		waittest.For(t, "the workers' delivery", func() bool { return tg.count("evt_fail") == 2 })
		stop()
		<-stopped
		for i := range 5 {
			if n := tg.count(fmt.Sprintf("evt_%d", i)); n != 1 {
				t.Errorf("evt_%d reached the target %d times, want 1", i, n)
			}
		}
		if n := tg.count("evt_fail"); n != 2 {
			t.Errorf("evt_fail reached the target %d times, want 2 (inline, then one worker)", n)
		}
	})
}
