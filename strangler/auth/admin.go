package auth

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ficus-gw/ficus/routes"
)

// The admin API's default scopes.
const (
	// DefaultAdminScope lets a token read and change everything the admin
	// API serves.
	DefaultAdminScope = "ficus.admin"
	// DefaultAdminReadScope lets a token only read (GET and HEAD).
	DefaultAdminReadScope = "ficus.admin.read"
)

// AdminGuard authenticates the admin API: every request needs a bearer
// access token of the IDP, resolved by the auth stage exactly as on a
// route with policy oauth2 (the same cache, revocations and remote
// introspection), carrying Scope, or, for a request that only reads (GET,
// HEAD), Scope or ReadScope. The answers are a route's: no token or a bad
// one 401 with WWW-Authenticate: Bearer, a missing scope 403, the IDP
// unreachable 503.
type AdminGuard struct {
	// Stage resolves the tokens. Nil (no IDP in this process and no
	// remote one) refuses every request with 503.
	Stage *Stage
	// Scope is needed for changes. Empty means DefaultAdminScope.
	Scope string
	// ReadScope is enough for GET and HEAD. Empty means
	// DefaultAdminReadScope.
	ReadScope string
	// Logger receives who changed what (method, path, caller); nil
	// discards.
	Logger *slog.Logger
}

// Wrap returns next behind the guard; next finds the caller with
// AdminCaller.
func (g AdminGuard) Wrap(next http.Handler) http.Handler {
	if g.Scope == "" {
		g.Scope = DefaultAdminScope
	}
	if g.ReadScope == "" {
		g.ReadScope = DefaultAdminReadScope
	}
	if g.Logger == nil {
		g.Logger = slog.New(slog.DiscardHandler)
	}
	// The policies as route rules, for the stage to enforce.
	write := &routes.Route{Name: "admin", Auth: &routes.Auth{Policy: "oauth2", ScopesAll: []string{g.Scope}}}
	read := &routes.Route{Name: "admin", Auth: &routes.Auth{Policy: "oauth2", ScopesAny: []string{g.Scope, g.ReadScope}}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Stage == nil {
			g.Logger.Error("admin API refused: no identity provider to check tokens (idp.enabled or gateway.remote_idp)")
			unavailable(w)
			return
		}
		route := write
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			route = read
		}
		grant, ok := g.Stage.Authorize(w, r, route)
		if !ok {
			return
		}
		caller := callerName(grant.Claim("sub"), grant.Claim("client_id"))
		if route == write {
			g.Logger.Info("admin API change", "method", r.Method, "path", r.URL.Path, "caller", caller)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
	})
}

// callerName names a token's holder for the audit trail: its subject,
// and the client it came through when that is someone else (a user's
// token).
func callerName(sub, client string) string {
	switch {
	case sub == "" || sub == client:
		return client
	case client == "":
		return sub
	}
	return sub + " via " + client
}

type callerKey struct{}

// AdminCaller returns who holds the token that AdminGuard accepted for
// the request of ctx (the token's subject, and its client when that
// differs: "u-42 via ops-console"); false outside the guard.
func AdminCaller(ctx context.Context) (string, bool) {
	c, ok := ctx.Value(callerKey{}).(string)
	return c, ok
}
