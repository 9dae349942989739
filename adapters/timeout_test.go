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
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/adapters/schemes"
	"github.com/ficus-gw/ficus/adapters/tokens"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2/clientcredentials"
)

// Issue 8, item 15: the adapter's token was fetched without a context and
// with a client without a timeout: a hanging IDP held a delivery worker
// forever, past the deliverer's shutdown.
func TestDeliveryStopsWhileATokenRequestHangs(t *testing.T) {
	t.Parallel()
	idp, asked, _ := waittest.Hanging(t)
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
	waittest.Recv(t, "Run to end with its context", stopped)
}

// Issue 8, item 15: when a jwt sender's keys cannot be fetched in time the
// sender gets 503 with Retry-After (so it retries), not 401, and nothing
// is stored.
func TestAnUnreachableSenderJWKSAnswers503(t *testing.T) {
	t.Parallel()
	jwks, _, _ := waittest.Hanging(t)
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
