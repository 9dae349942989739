// Package idptest runs an identity provider on the in-memory store behind
// a real HTTP server, for other packages' tests.
package idptest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store/memory"
)

// Server is a running IDP.
type Server struct {
	P      *idp.Provider
	Keys   *idp.KeyManager
	Issuer string // also its base URL
}

// Options tune the IDP before it starts.
type Options struct {
	Config *idp.Config
	Keys   *idp.KeyOptions
	// Wrap, if set, wraps the IDP's handler (to watch requests).
	Wrap func(http.Handler) http.Handler
}

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.Issuer + "/oauth2/token" }

// Start runs an IDP, with cheap password hashing, closed in t.Cleanup.
// tune may adjust the provider and key settings and wrap the handler.
func Start(t testing.TB, tune ...func(*Options)) *Server {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	srv := httptest.NewUnstartedServer(nil)
	s := &Server{Issuer: "http://" + srv.Listener.Addr().String()}
	cfg := idp.Config{Issuer: s.Issuer, Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}}
	var ko idp.KeyOptions
	o := Options{Config: &cfg, Keys: &ko}
	for _, f := range tune {
		f(&o)
	}
	var err error
	if s.Keys, err = idp.NewKeyManager(ctx, st, ko); err != nil {
		t.Fatal(err)
	}
	if s.P, err = idp.New(idp.Options{Config: cfg, Store: st, Keys: s.Keys}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.P.Close)
	srv.Config.Handler = s.P.Handler()
	if o.Wrap != nil {
		srv.Config.Handler = o.Wrap(srv.Config.Handler)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

// Client creates a client and returns its secret.
func (s *Server) Client(t testing.TB, c idp.NewClient) string {
	t.Helper()
	secret, err := s.P.CreateClient(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}
