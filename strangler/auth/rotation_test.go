package auth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/idptest"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
	"github.com/ficus-gw/ficus/strangler/auth"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"golang.org/x/oauth2/clientcredentials"
)

// Signing keys rotate twice while clients keep calling with fresh tokens:
// the service, verifying offline from the JWKS, refuses nothing.
func TestKeyRotationUnderTrafficFailsNothing(t *testing.T) {
	ctx := context.Background()
	is := idptest.Start(t, func(o *idptest.Options) { o.Config.ClientRate, o.Keys.PublishDelay = -1, 150*time.Millisecond })
	p, keys, issuer := is.P, is.Keys, is.Issuer
	secret := is.Client(t, idp.NewClient{ID: "c", Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"orders.read"}})

	v, err := verify.New(ctx, verify.Options{JWKSURL: issuer + "/.well-known/jwks.json", Audience: "orders-svc", Issuer: issuer, RefetchInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var kids sync.Map
	service := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kids.Store(strings.Split(r.Header.Get("Authorization"), ".")[0], true)
		io.WriteString(w, "ok")
	}), "orders.read"))
	defer service.Close()
	stage, _ := auth.New(auth.Options{Issuer: auth.Local{P: p}})
	gw, _ := strangler.New(strangler.Options{Auth: stage})
	f, err := routes.Parse("r.yaml", []byte(`version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "`+service.URL+`", audience: orders-svc}
routes:
  - {name: o, match: {prefix: /orders}, to: orders, auth: {policy: oauth2, scopes_all: [orders.read]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	gw.Load(f)
	front := httptest.NewServer(gw)
	defer front.Close()

	cc := clientcredentials.Config{ClientID: "c", ClientSecret: secret, TokenURL: is.TokenURL()}
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok, err := cc.Token(ctx) // a fresh token: its first request mints a new JWT
				if err != nil {
					failed.Add(1)
					continue
				}
				for j := 0; j < 5; j++ {
					req, _ := http.NewRequest("GET", front.URL+"/orders", nil)
					req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
					resp, err := http.DefaultClient.Do(req)
					if err != nil || resp.StatusCode != 200 {
						failed.Add(1)
						if resp != nil {
							resp.Body.Close()
						}
						continue
					}
					resp.Body.Close()
					ok.Add(1)
				}
			}
		}()
	}
	keysSeen := func() int {
		n := 0
		kids.Range(func(any, any) bool { n++; return true })
		return n
	}
	// Three phases of traffic, split by two rotations: each lasts until the
	// service has accepted JWTs from the newest key and 100 requests more
	// have passed (or one failed).
	for phase := 1; phase <= 3; phase++ {
		from := ok.Load()
		waittest.For(t, fmt.Sprintf("JWTs from key %d and 100 requests", phase), func() bool {
			return failed.Load() > 0 || (keysSeen() >= phase && ok.Load() >= from+100)
		})
		if phase < 3 {
			if _, err := keys.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	n := keysSeen()
	if failed.Load() != 0 || n < 3 {
		t.Fatalf("%d ok, %d failed, JWTs from %d keys (want 0 failed, 3 keys)", ok.Load(), failed.Load(), n)
	}
	t.Logf("%d requests across 2 rotations (JWTs from %d keys), none failed", ok.Load(), n)
}
