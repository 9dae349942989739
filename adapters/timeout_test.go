package adapters_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/adapters/schemes"
	"github.com/ficus-gw/ficus/adapters/tokens"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2/clientcredentials"
)

// hangingServer answers nothing until release is called (at the latest
// when the test ends); asked receives each request.
func hangingServer(t *testing.T) (url string, asked chan struct{}, release func()) {
	t.Helper()
	asked, done := make(chan struct{}, 100), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first
	return srv.URL, asked, release
}

func within10s(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still blocked after 10s", what)
	}
}

// Issue 8, item 15: the adapter's token was fetched without a context and
// with a client without a timeout: a hanging IDP held a delivery worker
// forever, past the deliverer's shutdown.
func TestDeliveryStopsWhileATokenRequestHangs(t *testing.T) {
	t.Parallel()
	idp, asked, _ := hangingServer(t)
	q := inbox.NewMemory()
	q.Insert(context.Background(), &inbox.Event{Adapter: "a", EventID: "e1", Body: []byte("{}")})
	cc := &tokens.ClientCredentials{Config: &clientcredentials.Config{ClientID: "a", ClientSecret: "s", TokenURL: idp}, Timeout: time.Hour}
	d := &adapters.Deliverer{Inbox: q, Workers: 1, Poll: 5 * time.Millisecond,
		Targets: map[string]adapters.Target{"a": {URL: "http://127.0.0.1:1", Token: cc}}}
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { d.Run(ctx); close(stopped) }()
	<-asked
	stop()
	within10s(t, "Run after its context ended", stopped)
}

// Issue 8, item 15: when a jwt sender's keys cannot be fetched in time the
// sender gets 503 with Retry-After (so it retries), not 401, and nothing
// is stored.
func TestAnUnreachableSenderJWKSAnswers503(t *testing.T) {
	t.Parallel()
	jwks, _, _ := hangingServer(t)
	q := inbox.NewMemory()
	in := &adapters.Ingest{Name: "plaid", Inbox: q, EventIDPointer: "/id",
		Scheme: schemes.JWT{Keys: &schemes.JWKSKeys{URL: jwks, Timeout: 100 * time.Millisecond}}}
	srv := httptest.NewServer(in)
	defer srv.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body := `{"id":"it_1"}`
	sum := sha256.Sum256([]byte(body))
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iat": time.Now().Unix(), "request_body_sha256": hex.EncodeToString(sum[:])})
	tok.Header["kid"] = "k1"
	signed, _ := tok.SignedString(key)
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
	req.Header.Set("Plaid-Verification", signed)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if fresh, _ := q.Insert(context.Background(), &inbox.Event{Adapter: "plaid", EventID: "it_1"}); !fresh {
		t.Fatal("a request that could not be verified was stored")
	}
}
