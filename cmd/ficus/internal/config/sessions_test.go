package config

import (
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/routes"
)

// Issue 10: the sessions section is checked with the rest of the file,
// each problem with its line.
func TestSessionsAreChecked(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, given, want string }{
		{"off by default: nothing checked", "sessions: {cookie: 'a b'}\n", ""},
		{"valid", "sessions:\n  enabled: true\n  update_keys: [cart_id, locale]\n  allowed_origins: [https://shop.example.com]\n  redirect_hosts: [shop.example.com]\n", ""},
		{"bad cookie name", "sessions:\n  enabled: true\n  cookie: 'a b'\n", ":3: sessions.cookie: \"a b\" is not a cookie name"},
		{"__Host- cookie without secure always", "sessions:\n  enabled: true\n  cookie: __Host-ficus_session\n", ":3: sessions.cookie: \"__Host-ficus_session\" needs sessions.secure: always"},
		{"same cookie names", "sessions:\n  enabled: true\n  visitor_cookie: ficus_session\n", ":3: sessions.visitor_cookie: must differ from sessions.cookie"},
		{"secure", "sessions:\n  enabled: true\n  secure: sometimes\n", ":3: sessions.secure: must be one of auto, always"},
		{"duplicate header", "sessions:\n  enabled: true\n  headers: {user: X-User, level: x-user}\n", ":3: sessions.headers.level: x-user is also sessions.headers.user"},
		{"bad header", "sessions:\n  enabled: true\n  headers: {jpt: 'X JPT'}\n", "sessions.headers.jpt: \"X JPT\" is not a header name"},
		{"bad key", "sessions:\n  enabled: true\n  update_keys: [ok, 'no way']\n", ":3: sessions.update_keys[1]: \"no way\" is not a key"},
		{"negative start limit", "sessions:\n  enabled: true\n  starts_per_minute: -1\n", ":3: sessions.starts_per_minute: must not be negative"},
		{"update size", "sessions:\n  enabled: true\n  max_update_bytes: 1MiB\n", ":3: sessions.max_update_bytes: must be between 64 and 64KiB"},
		{"login path of the IDP", "sessions:\n  enabled: true\n  login_path: /oauth2/login\n", ":3: sessions.login_path: /oauth2/login belongs to the IDP"},
		{"same paths", "sessions:\n  enabled: true\n  logout_path: /auth/./login\n", ":3: sessions.logout_path: /auth/login is also sessions.login_path"},
		{"bad origin", "sessions:\n  enabled: true\n  allowed_origins: [shop.example.com]\n", ":3: sessions.allowed_origins[0]: must be scheme://host[:port]"},
		{"bad redirect host", "sessions:\n  enabled: true\n  redirect_hosts: ['https://x']\n", ":3: sessions.redirect_hosts[0]"},
		{"no IDP here", "idp: {enabled: false}\nsessions:\n  enabled: true\n", ":3: sessions.enabled: sessions need the IDP in this process (idp.enabled is false)"},
		{"remote IDP", "gateway: {remote_idp: {issuer: 'https://idp.example.com', client_id: gw, client_secret: env:X}}\nsessions:\n  enabled: true\n", ":3: sessions.enabled: sessions need the IDP in this process (gateway.remote_idp is set)"},
		{"webhook path", "webhooks: {adapters: [{name: a, path: /auth/logout}]}\nsessions:\n  enabled: true\n", "sessions.logout_path: /auth/logout is also the path of webhooks.adapters[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.given, ForCheck)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v does not contain %q", err, tt.want)
			}
		})
	}
}

// Issue 10: a route with policy session is refused at start (and at a
// reload) when the session layer is off or the IDP is elsewhere.
func TestCheckRulesSession(t *testing.T) {
	t.Parallel()
	f := &routes.File{Monolith: "legacy", Routes: []*routes.Route{{Name: "shop", To: "web", Auth: &routes.Auth{Policy: "session"}}}}
	c := Defaults()
	c.Routes.File = "routes.yaml"
	if err := c.CheckRules(f); err == nil || !strings.Contains(err.Error(), "route shop: policy session needs the session layer: set sessions.enabled") {
		t.Fatalf("sessions off: %v", err)
	}
	c.Sessions.Enabled = true
	if err := c.CheckRules(f); err != nil {
		t.Fatalf("sessions on: %v", err)
	}
	c.Gateway.RemoteIDP.Issuer = "https://idp.example.com"
	if err := c.CheckRules(f); err == nil || !strings.Contains(err.Error(), "route shop: policy session needs the IDP in this process; gateway.remote_idp is set") {
		t.Fatalf("remote IDP: %v", err)
	}
}
