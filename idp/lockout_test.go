package idp_test

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"golang.org/x/time/rate"
)

const (
	attackerIP = "198.51.100.66"
	victimIP   = "203.0.113.10"
)

// behindProxy tunes a test IDP to trust 127.0.0.1 (the test client) as a
// proxy, so X-Forwarded-For says who is calling.
func behindProxy(c *idp.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// Issue 8 item 11: the per-client rate limit was charged on the claimed
// client_id before authentication, so flooding requests that named a
// victim's id (without its secret) gave the real client 429. A client's
// bucket is now charged only once its credentials verify; failures are
// charged to the caller's address.
func TestFailedAuthenticationDoesNotLockOutTheClient(t *testing.T) {
	ti := newTestIDP(t, false, behindProxy, func(c *idp.Config) {
		c.ClientRate, c.ClientBurst = 1, 5
		c.FailureRate, c.FailureBurst = rate.Every(time.Hour), 10
	})
	token := ti.url("/oauth2/token")
	var flood []string
	for i := range 40 {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"machine"}}
		if i%2 == 1 {
			form.Set("client_secret", fmt.Sprint("guess-", i))
		}
		code, hdr, body, err := send(token, form, "X-Forwarded-For", attackerIP)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, fmt.Sprint(code, " ", hdr.Get("Retry-After") != "", " ", strings.TrimSpace(body)))
	}
	for i := range 5 {
		if code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "machine", "X-Forwarded-For", victimIP); code != 200 {
			t.Fatalf("the real client, request %d after the flood: %d %s", i, code, b)
		}
	}
	for i, got := range flood {
		if i < 10 && !strings.HasPrefix(got, "401 ") {
			t.Errorf("attempt %d: %s, want 401", i, got)
		}
		if i >= 10 && !strings.HasPrefix(got, `429 true {"error":"slow_down"`) {
			t.Errorf("attempt %d past the address's failure budget: %s, want 429 slow_down with Retry-After", i, got)
		}
	}
	// The client's own bucket still limits the client itself.
	if code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "machine", "X-Forwarded-For", victimIP); code != 429 {
		t.Fatalf("the client past its own rate: %d %s, want 429", code, b)
	}
	// A blocked address is refused even with the right secret: no guessing
	// continues from there.
	if code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "web", "X-Forwarded-For", attackerIP); code != 429 {
		t.Fatalf("a blocked address with a valid secret: %d %s, want 429", code, b)
	}
}

// Issue 8 item 11: a public client has no secret, so anyone may name it;
// its requests are limited per client and address, and a flood from one
// address does not refuse the app's other users.
func TestPublicClientFloodDoesNotLockOutItsUsers(t *testing.T) {
	ti := newTestIDP(t, false, behindProxy, func(c *idp.Config) { c.ClientRate, c.ClientBurst = 1, 5 })
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {"ficus_rt_junk"}}
	saw429 := false
	for range 40 {
		code, _, _, err := send(ti.url("/oauth2/token"), form, "X-Forwarded-For", attackerIP)
		if err != nil {
			t.Fatal(err)
		}
		saw429 = saw429 || code == 429
	}
	if !saw429 {
		t.Fatal("40 requests from one address past the client rate were never refused")
	}
	code, _, body, err := send(ti.url("/oauth2/token"), form, "X-Forwarded-For", victimIP)
	if err != nil || code != 400 || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("another user of the public client: %d %s %v, want 400 invalid_grant", code, body, err)
	}
}

// Issue 8 item 11: X-Forwarded-For counts only from configured trusted
// proxies; a client at the edge cannot rotate it to escape the limit.
func TestFailureLimitIgnoresForwardedForFromUntrustedPeers(t *testing.T) {
	ti := newTestIDP(t, false, func(c *idp.Config) { c.FailureRate, c.FailureBurst = rate.Every(time.Hour), 5 })
	var codes []int
	for i := range 8 {
		code, _, _, err := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
			"client_id": {"machine"}, "client_secret": {"guess"}}, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, code)
	}
	if fmt.Sprint(codes) != "[401 401 401 401 401 429 429 429]" {
		t.Fatalf("codes %v: the spoofed X-Forwarded-For must not reset the limit", codes)
	}
	// The audit trail names the socket peer, not the spoofed address.
	if logs := ti.logs.String(); strings.Contains(logs, "192.0.2.") || !strings.Contains(logs, `"remote_ip":"127.0.0.1"`) {
		t.Fatalf("audit remote_ip is not the socket peer:\n%s", logs)
	}
}

// Issue 8 item 11: concurrency must not stretch an address's failure
// budget. Checks that need argon2id, in flight from one address, never
// exceed the failures it has left: the rest are refused at once (a
// check-then-charge limit let every request in flight through, again at
// each refill).
func TestConcurrentFailuresStayWithinTheAddressBudget(t *testing.T) {
	ti := newTestIDP(t, false, behindProxy, func(c *idp.Config) {
		c.HashMemory, c.HashWait = 1<<20, 30*time.Second
		c.FailureRate, c.FailureBurst = rate.Every(time.Hour), 3
	})
	hp := probeHashes(t, ti.p)
	hp.holdNext(1)
	const n = 10
	answers := make(chan string, n)
	for i := range n {
		go func() {
			code, _, body, err := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
				"client_id": {fmt.Sprint("guess-", i)}, "client_secret": {"guess"}}, "X-Forwarded-For", attackerIP)
			answers <- fmt.Sprint(code, " ", strings.TrimSpace(body), err)
		}()
	}
	hp.waitStarted(t, 1)
	// Three checks are admitted (one running and held, two waiting for the
	// budget); the other seven are answered 429 without waiting.
	deadline := time.After(10 * time.Second)
	for i := range n - 3 {
		select {
		case a := <-answers:
			if !strings.HasPrefix(a, "429 ") {
				t.Fatalf("answer %d while three checks are in flight: %s, want 429", i, a)
			}
		case <-deadline:
			t.Fatalf("only %d of %d requests past the address's budget were refused at once", i, n-3)
		}
	}
	hp.release()
	for range 3 {
		if a := <-answers; !strings.HasPrefix(a, "401 ") {
			t.Errorf("an admitted check: %s, want 401", a)
		}
	}
	if _, runs := hp.stats(); runs != 3 {
		t.Errorf("%d argon2id runs, want 3", runs)
	}
}

// Issue 15: at a cold start, 32 concurrent first requests of a client with
// the right secret were each admitted by the address's failure budget
// while the one argon2id check they shared ran, so that those beyond the
// budget were answered 429 "too many failed client authentications"
// though none had failed. Now the requests sharing a check take one place
// in the budget: every one is answered 200, after one argon2id run.
func TestConcurrentFirstRequestsOfAGoodClientAreNotFailures(t *testing.T) {
	ti := newTestIDP(t, false, func(c *idp.Config) {
		c.HashMemory, c.HashWait = 1<<20, 30*time.Second
		c.FailureRate, c.FailureBurst = rate.Every(time.Hour), 3
	})
	hp := probeHashes(t, ti.p)
	hp.holdNext(1)
	const n = 32
	answers := make(chan string, n)
	for range n {
		go func() {
			code, _, body, err := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
				"client_id": {"machine"}, "client_secret": {ti.secret["machine"]}})
			answers <- fmt.Sprint(code, " ", strings.TrimSpace(body), err)
		}()
	}
	hp.waitStarted(t, 1)
	// While the check is held no request may be answered: before the fix
	// the requests beyond the budget were refused at once. Give them the
	// time to arrive (this can only let the old behaviour go unnoticed on
	// a very slow machine, never fail a correct one).
	select {
	case a := <-answers:
		t.Fatalf("answered while the one check was running: %s", a)
	case <-time.After(300 * time.Millisecond):
	}
	hp.release()
	for range n {
		if a := <-answers; !strings.HasPrefix(a, "200 ") {
			t.Errorf("a request with the right secret: %s, want 200", a)
		}
	}
	if _, runs := hp.stats(); runs != 1 {
		t.Errorf("%d argon2id runs for one secret, want 1", runs)
	}
	// None of them counted as a failure: the address still has its budget.
	for i := range 3 {
		if code, _, body, _ := send(ti.url("/oauth2/token"), url.Values{"grant_type": {"client_credentials"},
			"client_id": {"machine"}, "client_secret": {"wrong"}}); code != 401 {
			t.Fatalf("wrong secret %d: %d %s, want 401 (the budget must be untouched)", i, code, body)
		}
	}
}
