package routes

import (
	"bytes"
	"strings"
	"testing"
)

const bridgeBase = `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1/app/"}
  orders: {url: "http://127.0.0.1:2"}
  auth: {url: "http://127.0.0.1:3"}
`

func TestParseBridge(t *testing.T) {
	t.Parallel()
	f, err := Parse("r.yaml", []byte(bridgeBase+`bridges:
  legacy-session:
    cookie: JSESSIONID
    whoami: {path: "/api/whoami?format=json"}
    cache_ttl: 30s
    client: web-bridge
    scope: orders.read
    subject_prefix: "legacy:"
    login_url: /login
    mapping:
      user_id: /user/id
      customer_number: /user/customerNo
      logged_on: {pointer: /status, equals: LOGGED_IN}
      claims: {name: /user/displayName}
  other:
    cookie: PHPSESSID
    whoami: {upstream: auth, path: /me, method: POST, timeout: 500ms}
    client: web-bridge
    mapping: {user_id: /id, logged_on: /authenticated}
routes:
  - {name: moved, match: {prefix: /orders}, to: orders, auth: {policy: bridge, bridge: legacy-session, require_login: true}}
  - {name: other, match: {prefix: /other}, to: orders, auth: {policy: bridge, bridge: other}}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := f.Routes[0].Auth.BridgeRule()
	if b == nil || b.Name() != "legacy-session" || b.WhoamiURL() != "http://127.0.0.1:1/app/api/whoami?format=json" {
		t.Fatalf("bridge %+v", b)
	}
	if eq := b.Mapping.LoggedOn.Equals; eq == nil || *eq != "LOGGED_IN" {
		t.Fatalf("logged_on %+v", b.Mapping.LoggedOn)
	}
	o := f.Routes[1].Auth.BridgeRule()
	if o.WhoamiURL() != "http://127.0.0.1:3/me" || o.Mapping.LoggedOn.Pointer != "/authenticated" || o.Mapping.LoggedOn.Equals != nil {
		t.Fatalf("other bridge %+v", o)
	}
	var nilAuth *Auth
	if nilAuth.BridgeRule() != nil {
		t.Fatal("a route without auth has a bridge")
	}
}

func TestParseBridgeRejects(t *testing.T) {
	t.Parallel()
	bridge := func(fields string) string {
		return bridgeBase + "bridges:\n  b:\n    cookie: JSESSIONID\n    whoami: {path: /whoami}\n    client: web\n    mapping: {user_id: /id}\n" + fields +
			"routes:\n  - {name: r, match: {prefix: /r}, to: orders, auth: {policy: bridge, bridge: b}}\n"
	}
	withRoute := func(auth string) string {
		return strings.Replace(bridge(""), "auth: {policy: bridge, bridge: b}", auth, 1)
	}
	tests := []struct{ name, given, want string }{
		{"unknown bridge", withRoute("auth: {policy: bridge, bridge: nope}"), `r.yaml:14:79: routes[0].auth.bridge: unknown bridge "nope"`},
		{"policy without bridge", withRoute("auth: {policy: bridge}"), "routes[0].auth: policy bridge needs a bridge"},
		{"bridge without policy", withRoute("auth: {policy: oauth2, bridge: b}"), `routes[0].auth.bridge: a bridge needs policy bridge (policy is "oauth2")`},
		{"require_login without bridge", withRoute("auth: {policy: oauth2, require_login: true}"), "require_login needs policy bridge"},
		{"scopes on a bridge route", withRoute("auth: {policy: bridge, bridge: b, scopes_all: [x]}"), "do not apply to policy bridge"},
		{"client on a bridge route", withRoute("auth: {policy: bridge, bridge: b, client: web}"), "takes its client from the bridge"},
		{"no cookie", strings.Replace(bridge(""), "    cookie: JSESSIONID\n", "", 1), "bridges.b.cookie: is required"},
		{"bad cookie", strings.Replace(bridge(""), "cookie: JSESSIONID", `cookie: "a b"`, 1), `r.yaml:9:13: bridges.b.cookie: invalid cookie name "a b"`},
		{"no path", strings.Replace(bridge(""), "{path: /whoami}", "{}", 1), "bridges.b.whoami.path: is required"},
		{"absolute path", strings.Replace(bridge(""), "{path: /whoami}", "{path: \"http://evil/x\"}", 1), "must be a path starting with /"},
		{"scheme-relative path", strings.Replace(bridge(""), "{path: /whoami}", "{path: \"//evil/x\"}", 1), "must be a path starting with /"},
		{"unknown upstream", strings.Replace(bridge(""), "{path: /whoami}", "{path: /whoami, upstream: ghost}", 1), `bridges.b.whoami.upstream: unknown upstream "ghost"`},
		{"bad method", strings.Replace(bridge(""), "{path: /whoami}", "{path: /whoami, method: DELETE}", 1), "bridges.b.whoami.method: must be one of: GET, POST"},
		{"long timeout", strings.Replace(bridge(""), "{path: /whoami}", "{path: /whoami, timeout: 1m}", 1), "bridges.b.whoami.timeout: must be at most 30s"},
		{"long cache", bridge("    cache_ttl: 1h\n"), "bridges.b.cache_ttl: must be at most 5m0s"},
		{"no client", strings.Replace(bridge(""), "    client: web\n", "", 1), "bridges.b.client: is required"},
		{"no user id", strings.Replace(bridge(""), "{user_id: /id}", "{customer_number: /c}", 1), "bridges.b.mapping.user_id: is required"},
		{"bad pointer", strings.Replace(bridge(""), "{user_id: /id}", "{user_id: id}", 1), "is not a JSON pointer"},
		{"bad escape", strings.Replace(bridge(""), "{user_id: /id}", "{user_id: /a~2b}", 1), "~ must be followed by 0 or 1"},
		{"reserved claim", strings.Replace(bridge(""), "{user_id: /id}", "{user_id: /id, claims: {sub: /x}}", 1), `claim "sub" is set by ficus`},
		{"bad claim name", strings.Replace(bridge(""), "{user_id: /id}", "{user_id: /id, claims: {Name: /x}}", 1), "not a valid claim name"},
		{"logged_on unknown field", strings.Replace(bridge(""), "{user_id: /id}", "{user_id: /id, logged_on: {pointr: /x}}", 1), "field pointr not found in mapping.logged_on"},
		{"bad login url", bridge("    login_url: \"javascript:alert(1)\"\n"), "must be a path starting with / or an http(s) URL"},
		{"bad subject prefix", bridge("    subject_prefix: \"a b\"\n"), "must be printable ASCII"},
		{"bad bridge name", strings.Replace(bridge(""), "\n  b:\n", "\n  Bad Name:\n", 1), "is not a valid name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(tt.given))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.given)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "r.yaml:") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestDiffBridges(t *testing.T) {
	t.Parallel()
	src := bridgeBase + `bridges:
  b: {cookie: JSESSIONID, whoami: {path: /whoami}, client: web, mapping: {user_id: /id}}
routes:
  - {name: r, match: {prefix: /r}, to: orders, auth: {policy: bridge, bridge: b}}
`
	old, err := Parse("old.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	changed, err := Parse("new.yaml", []byte(strings.Replace(strings.Replace(src, "/whoami", "/me", 1), "client: web", "client: web2", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = WriteDiff(&buf, Diff(old, changed))
	for _, want := range []string{"~ bridge b\n", "client: web -> web2", "whoami url: http://127.0.0.1:1/app/whoami -> http://127.0.0.1:1/app/me", "~ route r\n    bridge b changed"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("diff lacks %q:\n%s", want, buf.String())
		}
	}
}
