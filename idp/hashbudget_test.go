package idp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"golang.org/x/time/rate"
)

// send posts a form from any goroutine (no t.Fatal) and returns the
// status, headers and body.
func send(u string, form url.Values, hdr ...string) (int, http.Header, string, error) {
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// hashProbe records the argon2id runs of a provider and can hold them.
type hashProbe struct {
	mu        sync.Mutex
	cur, peak int64 // KiB in use by running hashes
	runs      int
	hold      chan struct{} // until closed, the next toHold runs block once started
	started   chan struct{}
	toHold    int
	released  sync.Once
}

// probeHashes hooks p's argon2id runs; held runs are released at the
// latest when the test ends.
func probeHashes(t *testing.T, p *idp.Provider) *hashProbe {
	hp := &hashProbe{hold: make(chan struct{}), started: make(chan struct{}, 4096)}
	idp.SetHashHook(p, func(d int64) {
		hp.mu.Lock()
		hp.cur += d
		hp.peak = max(hp.peak, hp.cur)
		holding := d > 0 && hp.toHold > 0
		if holding {
			hp.toHold--
		}
		if d > 0 {
			hp.runs++
		}
		hp.mu.Unlock()
		if holding {
			hp.started <- struct{}{}
			<-hp.hold
		}
	})
	t.Cleanup(hp.release)
	return hp
}

// holdNext makes the next n runs block, once started, until release.
func (hp *hashProbe) holdNext(n int) { hp.mu.Lock(); hp.toHold = n; hp.mu.Unlock() }
func (hp *hashProbe) release() {
	hp.released.Do(func() { hp.mu.Lock(); hp.toHold = 0; hp.mu.Unlock(); close(hp.hold) })
}

// waitStarted waits until n held runs have started.
func (hp *hashProbe) waitStarted(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for range n {
		select {
		case <-hp.started:
		case <-deadline:
			t.Fatalf("fewer than %d hashes started", n)
		}
	}
}

func (hp *hashProbe) stats() (peak int64, runs int) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return hp.peak, hp.runs
}

// Issue 8 item 10: token requests with random client ids each ran a dummy
// argon2id and nothing bounded how many ran at once (32 concurrent requests
// took ficus from 150 MiB to 4 GiB). Now the memory of concurrent runs is
// bounded by HashMemory, and a client whose secret verified recently is
// served without waiting for the flood.
func TestHashingMemoryIsBounded(t *testing.T) {
	const budgetKiB = 2 * 1024 // two runs at the test IDP's 1 MiB cost
	// The flood comes from 200 addresses (through a trusted proxy), so the
	// per-address failure limit does not stop it: the budget must.
	ti := newTestIDP(t, false, behindProxy, func(c *idp.Config) { c.HashMemory, c.HashWait = budgetKiB<<10, time.Minute })
	cc := url.Values{"grant_type": {"client_credentials"}}
	if code, _, b := ti.post(t, "/oauth2/token", cc, "machine"); code != 200 {
		t.Fatalf("warm-up: %d %s", code, b)
	}
	hp := probeHashes(t, ti.p)
	const flood = 200
	hp.holdNext(flood)
	codes := make(chan string, flood)
	for i := range flood {
		go func() {
			code, _, body, err := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
				"client_id": {fmt.Sprintf("bogus-%d", i)}, "client_secret": {"guess"}}, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
			codes <- fmt.Sprint(code, " ", body, err)
		}()
	}
	hp.waitStarted(t, budgetKiB/1024) // the budget is full and held: the flood is in progress
	code, _, b := ti.post(t, "/oauth2/token", cc, "machine")
	if code != 200 {
		t.Fatalf("legitimate client during the flood: %d %s", code, b)
	}
	hp.release()
	for range flood {
		if c := <-codes; !strings.HasPrefix(c, "401 ") {
			t.Errorf("bogus request: %s, want 401", c)
		}
	}
	peak, runs := hp.stats()
	if peak > budgetKiB {
		t.Errorf("argon2id runs held %d KiB at once, budget %d KiB", peak, budgetKiB)
	}
	if runs != flood {
		t.Errorf("%d argon2id runs for %d bogus requests, want one each", runs, flood)
	}
}

// Issue 8 item 10: beyond the budget and the bounded wait, a check is
// refused with 503 and a Retry-After, the same for a known and an unknown
// client, and the refusal changes nothing but the caller's failure count.
func TestHashingBeyondTheBudgetIsRefused(t *testing.T) {
	ti := newTestIDP(t, false, behindProxy, func(c *idp.Config) {
		c.HashMemory, c.HashWait = 1<<20, 50*time.Millisecond
		c.FailureRate, c.FailureBurst = rate.Every(time.Hour), 3
	})
	hp := probeHashes(t, ti.p)
	hp.holdNext(1)
	held := make(chan string, 1)
	go func() {
		code, _, body, err := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
			"client_id": {"nobody"}, "client_secret": {"guess"}}, "X-Forwarded-For", attackerIP)
		held <- fmt.Sprint(code, " ", body, err)
	}()
	hp.waitStarted(t, 1)

	var bodies []string
	for _, id := range []string{"unknown-client", "machine"} {
		code, hdr, body, err := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
			"client_id": {id}, "client_secret": {"wrong"}}, "X-Forwarded-For", attackerIP)
		if err != nil {
			t.Fatal(err)
		}
		if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, `"error":"temporarily_unavailable"`) {
			t.Errorf("%s while the budget is full: %d %v %s", id, code, hdr, body)
		}
		bodies = append(bodies, body)
	}
	if bodies[0] != bodies[1] {
		t.Errorf("known and unknown clients are refused differently: %q vs %q", bodies[0], bodies[1])
	}
	hp.release()
	if c := <-held; !strings.HasPrefix(c, "401 ") {
		t.Errorf("the held request: %s, want 401", c)
	}
	// The held failure and the two refusals used up the address's three
	// failures: it is refused before any hashing now.
	if code, _, body, _ := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
		"client_id": {"machine"}, "client_secret": {ti.secret["machine"]}}, "X-Forwarded-For", attackerIP); code != 429 {
		t.Errorf("the address after three failures: %d %s, want 429", code, body)
	}
	if code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "machine", "X-Forwarded-For", victimIP); code != 200 {
		t.Fatalf("another address after the refusals: %d %s", code, b)
	}
	if strings.Count(ti.logs.String(), "argon2id memory budget") != 1 {
		t.Errorf("want one warning for the refusals:\n%s", ti.logs.String())
	}
}

// Issue 8 item 10: every way to fail costs the same number of argon2id
// runs whether or not the client or user exists.
func TestHashingCostIsUniform(t *testing.T) {
	ti := newTestIDP(t, false)
	ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}}, "web") // the web client's secret is now cached
	hp := probeHashes(t, ti.p)
	runs := func(form url.Values) int {
		t.Helper()
		_, before := hp.stats()
		code, _, body, err := send(ti.url("/oauth2/token"), form)
		if err != nil || code/100 != 4 {
			t.Fatalf("%v: %d %s %v", form, code, body, err)
		}
		_, after := hp.stats()
		return after - before
	}
	cc := func(id, secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	}
	pw := func(user string) url.Values {
		return url.Values{"grant_type": {"password"}, "client_id": {"web"}, "client_secret": {ti.secret["web"]},
			"username": {user}, "password": {"wrong password"}}
	}
	// A user with no password at all (as a federated login creates one).
	if err := ti.st.CreateUser(context.Background(), &store.User{ID: "fed-only", Username: "fed-only", Enabled: true, CreatedAt: ti.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name           string
		known, unknown url.Values
	}{
		{"a user without a password", pw("fed-only"), pw("no-such-user")},
		{"wrong client secret", cc("machine", "wrong"), cc("no-such-client", "wrong")},
		{"no client secret", cc("machine", ""), cc("no-such-client", "")},
		{"wrong password", pw(testUser), pw("no-such-user")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if k, u := runs(tt.known), runs(tt.unknown); k != u {
				t.Errorf("%d argon2id runs for a known account, %d for an unknown one", k, u)
			}
		})
	}
}
