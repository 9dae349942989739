package adapters_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/adapters/tokens"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/stripe/stripe-go/v82/webhook"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// A target service behind the gateway that verifies the JWT it gets,
// records (client_id, event id) and fails while failing() says so.
type target struct {
	mu     sync.Mutex
	seen   map[string]int // event id -> deliveries
	client map[string]string
	fail   atomic.Int64 // answers 503 while > 0, counting down
	down   atomic.Bool
}

func (tg *target) handler(v *verify.Verifier) http.Handler {
	return v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tg.down.Load() || tg.fail.Add(-1) >= 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		c, _ := verify.ClaimsFrom(r.Context())
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get(adapters.EventIDHeader)
		tg.mu.Lock()
		tg.seen[id]++
		tg.client[id] = c.ClientID + "|" + string(body)
		tg.mu.Unlock()
	}))
}

func (tg *target) count(id string) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.seen[id]
}

func TestDeliveryThroughTheGatewayWithTheAdapterClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, st := newInbox(t)

	// The IDP and the gateway.
	is := idptest.Start(t)
	p, issuer := is.P, is.Issuer
	secrets := map[string]string{}
	for _, id := range []string{"stripe-adapter", "bank-adapter"} {
		secrets[id] = is.Client(t, idp.NewClient{ID: id, Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"payments.notify"}})
	}
	v, _ := verify.New(ctx, verify.Options{JWKSURL: issuer + "/.well-known/jwks.json", Issuer: issuer, Audience: "payments"})
	pay, bank := &target{seen: map[string]int{}, client: map[string]string{}}, &target{seen: map[string]int{}, client: map[string]string{}}
	paySrv, bankSrv := httptest.NewServer(pay.handler(v)), httptest.NewServer(bank.handler(v))
	defer paySrv.Close()
	defer bankSrv.Close()
	stage, _ := auth.New(auth.Options{Issuer: auth.Local{P: p}})
	gw, _ := strangler.New(strangler.Options{Auth: stage})
	f, err := routes.Parse("r.yaml", []byte(strings.NewReplacer("PAY", paySrv.URL, "BANK", bankSrv.URL).Replace(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  payments: {url: "PAY", audience: payments}
  bank: {url: "BANK", audience: payments}
routes:
  - {name: pay-hooks, match: {prefix: /internal/payments}, to: payments, auth: {policy: oauth2, scopes_all: [payments.notify]}}
  - {name: bank-hooks, match: {prefix: /internal/bank}, to: bank, auth: {policy: oauth2, scopes_all: [payments.notify]}}
`)))
	if err != nil {
		t.Fatal(err)
	}
	gw.Load(f)
	front := httptest.NewServer(gw)
	defer front.Close()

	clientToken := func(id string) adapters.TokenSource {
		return &tokens.ClientCredentials{Config: &clientcredentials.Config{ClientID: id, ClientSecret: secrets[id], TokenURL: issuer + "/oauth2/token"}}
	}
	for i, ev := range []string{"evt_a", "evt_b", "evt_c"} {
		if _, err := st.Insert(ctx, &inbox.Event{Adapter: "stripe", EventID: ev, Body: []byte(`{"n":` + string(rune('0'+i)) + `}`)}); err != nil {
			t.Fatal(err)
		}
	}
	st.Insert(ctx, &inbox.Event{Adapter: "bank", EventID: "bank_1", Body: []byte(`{}`)})
	pay.fail.Store(2) // the first two attempts fail
	bank.down.Store(true)

	d := &adapters.Deliverer{Inbox: st, Workers: 3, BaseBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Poll: 20 * time.Millisecond,
		Targets: map[string]adapters.Target{
			"stripe": {URL: front.URL + "/internal/payments/events", Token: clientToken("stripe-adapter")},
			"bank":   {URL: front.URL + "/internal/bank/events", Token: clientToken("bank-adapter")},
		}}
	go d.Run(ctx)

	waittest.For(t, "the payments deliveries", func() bool { return pay.count("evt_a") == 1 && pay.count("evt_b") == 1 && pay.count("evt_c") == 1 })
	// The bank target is down: its event keeps being retried, without
	// holding up the payments target above.
	if bank.count("bank_1") != 0 {
		t.Fatal("delivered to a target that is down")
	}
	bank.down.Store(false)
	waittest.For(t, "the bank delivery", func() bool { return bank.count("bank_1") == 1 })
	time.Sleep(300 * time.Millisecond) // nothing is delivered twice
	for _, ev := range []string{"evt_a", "evt_b", "evt_c"} {
		if n := pay.count(ev); n != 1 {
			t.Fatalf("%s delivered %d times", ev, n)
		}
		e, _ := st.Get(ctx, "stripe", ev)
		if e.Status != "delivered" {
			t.Fatalf("%s status %s", ev, e.Status)
		}
	}
	pay.mu.Lock()
	got := pay.client["evt_a"]
	pay.mu.Unlock()
	if got != `stripe-adapter|{"n":0}` {
		t.Fatalf("the target saw %q, want the adapter's client id and the original body", got)
	}
}

func TestPermanentRefusalGoesToDeadLetters(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, st := newInbox(t)
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnprocessableEntity) }))
	defer refuse.Close()
	st.Insert(ctx, &inbox.Event{Adapter: "x", EventID: "e1", Body: []byte("{}")})
	d := &adapters.Deliverer{Inbox: st, Workers: 1, Poll: 20 * time.Millisecond,
		Targets: map[string]adapters.Target{"x": {URL: refuse.URL, Token: staticToken}}}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { d.Run(runCtx); close(stopped) }()
	waittest.For(t, "the dead letter", func() bool { e, _ := st.Get(ctx, "x", "e1"); return e != nil && e.Status == "dead" })
	if e, _ := st.Get(ctx, "x", "e1"); e.Attempts != 1 {
		t.Fatalf("a permanent refusal was retried: %d attempts", e.Attempts)
	}
	stop()
	<-stopped
	if err := st.Replay(ctx, "x", "e1"); err != nil {
		t.Fatal(err)
	}
	if e, _ := st.Get(ctx, "x", "e1"); e.Status != "pending" || e.Attempts != 0 {
		t.Fatalf("after replay: %s, %d attempts; want pending, 0", e.Status, e.Attempts)
	}
}

// staticToken is a target's token that never changes.
var staticToken = adapters.TokenFunc(func(context.Context) (*oauth2.Token, error) { return &oauth2.Token{AccessToken: "t"}, nil })

func TestSynchronousMode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, st := newInbox(t)
	var calls atomic.Int64
	var failing atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "created-by-target "+r.Header.Get(adapters.EventIDHeader))
	}))
	defer target.Close()
	d := &adapters.Deliverer{Inbox: st, Workers: 1, Poll: 20 * time.Millisecond, BaseBackoff: 20 * time.Millisecond,
		Targets: map[string]adapters.Target{"stripe": {URL: target.URL, Token: staticToken}}}
	in := stripeIngest(st)
	in.Sync = d
	srv := httptest.NewServer(in)
	defer srv.Close()
	send := func(payload string) (int, string) {
		sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: secret}).Header
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(payload))
		req.Header.Set("Stripe-Signature", sig)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := send(`{"id":"evt_sync_1"}`); code != 201 || body != "created-by-target evt_sync_1" {
		t.Fatalf("sync answer: %d %q", code, body)
	}
	if e, _ := st.Get(ctx, "stripe", "evt_sync_1"); e.Status != "delivered" {
		t.Fatalf("status %s", e.Status)
	}
	if code, _ := send(`{"id":"evt_sync_1"}`); code != 200 || calls.Load() != 1 {
		t.Fatalf("repeat: %d, target called %d times", code, calls.Load())
	}
	failing.Store(true)
	if code, _ := send(`{"id":"evt_sync_2"}`); code != 503 {
		t.Fatalf("failing target: %d", code)
	}
	if e, _ := st.Get(ctx, "stripe", "evt_sync_2"); e.Status != "pending" {
		t.Fatalf("a failed synchronous delivery must stay pending, is %s", e.Status)
	}
	failing.Store(false)
	go d.Run(ctx)
	waittest.For(t, "the workers' delivery", func() bool { e, _ := st.Get(ctx, "stripe", "evt_sync_2"); return e.Status == "delivered" })
}
