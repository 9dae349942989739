package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2/clientcredentials"
)

// adminSetup is the rule-store setup with the IDP of the process enabled,
// a running instance, and tokens of clients with and without the admin
// scopes.
type adminSetup struct {
	*storeSetup
	front, ops string
	// tokens by client: release-bot (ficus.admin), dashboard
	// (ficus.admin.read), orders-app (orders.read).
	tokens map[string]string
}

func newAdminSetup(t *testing.T, extraConfig string) *adminSetup {
	t.Helper()
	s := &adminSetup{storeSetup: newStoreSetup(t, "1s"), tokens: map[string]string{}}
	s.cfgText = strings.Replace(s.cfgText, "idp: {enabled: false}", `idp: {issuer: "http://ficus.test"}`, 1) + extraConfig
	os.WriteFile(s.cfg, []byte(s.cfgText), 0o600)
	secrets := map[string]string{}
	for client, scope := range map[string]string{"release-bot": "ficus.admin", "dashboard": "ficus.admin.read", "orders-app": "orders.read"} {
		out := s.cli(t, "idp", "client", "create", client, "--grant", "client_credentials", "--scope", scope)
		m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatal(out)
		}
		secrets[client] = m[1]
	}
	s.front, s.ops, _ = testServer(t, s.cfgText)
	for client, secret := range secrets {
		tok, err := (&clientcredentials.Config{ClientID: client, ClientSecret: secret, TokenURL: s.front + "/oauth2/token"}).Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[client] = tok.AccessToken
	}
	return s
}

// call sends method path to base with client's token (none: "") and the
// body (JSON when it starts with "{"), and returns the status, the
// answer's headers and its body.
func call(t *testing.T, base, method, path, client string, tokens map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	return callWith(t, http.DefaultClient, base, method, path, client, tokens, body)
}

// callWith is call on the HTTP client hc.
func callWith(t *testing.T, hc *http.Client, base, method, path, client string, tokens map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if client != "" {
		req.Header.Set("Authorization", "Bearer "+tokens[client])
	}
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (s *adminSetup) call(t *testing.T, method, path, client, body string) (int, string) {
	t.Helper()
	code, _, b := call(t, s.ops, method, path, client, s.tokens, body)
	return code, b
}

// count counts the rows of table.
func (s *adminSetup) count(t *testing.T, table string) int {
	t.Helper()
	db, err := pgx.Connect(context.Background(), s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func jsonString(v string) string { b, _ := json.Marshal(v); return string(b) }

// Issue 11: the admin API of the rule store on the operational listener:
// no token 401, a token without the admin scope 403, the read scope for
// reads only; every change stored with the token's client as author and
// the reason, in the audit table; a dry run stores nothing; an invalid
// rule set is refused with file:line:column (422); a change based on a
// revision no longer live is refused with the changes it would undo (409).
func TestAdminRoutesAPI(t *testing.T) {
	t.Parallel()
	s := newAdminSetup(t, "")
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	v1, v2, v3 := read(s.rules(t, "v1.yaml", 10)), read(s.rules(t, "v2.yaml", 30)), read(s.rules(t, "v3.yaml", 70))
	invalid := read("../../testdata/routes/invalid.yaml")

	// Authentication first, on every path under /admin/.
	code, hdr, _ := call(t, s.ops, "GET", "/admin/routes/status", "", nil, "")
	if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	for _, tc := range []struct {
		method, path, client, body string
		want                       int
	}{
		{"GET", "/admin/nothing-here", "", "", 401},
		{"POST", "/admin/routes/revisions?reason=x", "", v1, 401},
		{"GET", "/admin/routes/status", "orders-app", "", 403},
		{"POST", "/admin/routes/revisions?reason=x", "orders-app", v1, 403},
		{"POST", "/admin/routes/revisions?reason=x", "dashboard", v1, 403},
		{"GET", "/admin/routes/status", "dashboard", "", 200},
		{"GET", "/admin/nothing-here", "release-bot", "", 404},
	} {
		if code, body := s.call(t, tc.method, tc.path, tc.client, tc.body); code != tc.want {
			t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, tc.client, code, body, tc.want)
		}
	}
	if n := s.count(t, "route_revisions"); n != 0 {
		t.Fatalf("%d revisions stored by refused requests", n)
	}

	// Refusals before anything is stored.
	for _, tc := range []struct {
		name, path, body string
		want             int
		wantBody         string
	}{
		{"dry run", "/admin/routes/revisions?dry_run=1", v1, 200, `"message":"dry run: nothing stored (it would be revision 1)"`},
		{"invalid rules", "/admin/routes/revisions?reason=x", invalid, 422, `"body:13:14: routes[0].split[1].to: unknown upstream \"nowhere\""`},
		{"no reason", "/admin/routes/revisions", v1, 400, "a reason is required"},
		{"malformed JSON", "/admin/routes/revisions", `{"rules": 1}`, 400, "not the JSON object expected"},
		{"unknown field", "/admin/routes/rollback", `{"reason": "x", "to": 1}`, 400, `unknown field \"to\"`},
		{"rollback of nothing", "/admin/routes/rollback", `{"reason": "x"}`, 404, "no route revision has been applied yet"},
		{"two JSON objects", "/admin/routes/rollback", `{"reason": "x"} {"rev": 7, "reason": "y"}`, 400, "one JSON object"},
		{"bad dry_run", "/admin/routes/revisions?dry_run=maybe&reason=x", v1, 400, "dry_run must be"},
	} {
		if code, body := s.call(t, "POST", tc.path, "release-bot", tc.body); code != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, body, tc.want, tc.wantBody)
		}
	}
	if n := s.count(t, "route_revisions"); n != 0 {
		t.Fatalf("%d revisions stored by a dry run or refusals", n)
	}

	// The changes.
	for i, tc := range []struct {
		name, path, body string
		want             int
		wantBody         string
	}{
		{"apply YAML", "/admin/routes/revisions?reason=start+at+10%25", v1, 201, `"message":"stored revision 1 (parent 0, by release-bot)"`},
		{"apply JSON", "/admin/routes/revisions", `{"rules": ` + jsonString(v2) + `, "reason": "more", "parent": 1}`, 201, `weight orders: 10% -\u003e 30%\n"`},
		{"stale parent", "/admin/routes/revisions", `{"rules": ` + jsonString(v3) + `, "reason": "based on 1", "parent": 1}`, 409,
			`"diff":"~ route orders\n    weight legacy: 90% -\u003e 70%\n    weight orders: 10% -\u003e 30%\n","error":"revision 2 is live, not 1`},
		{"same rules", "/admin/routes/revisions?reason=again", v2, 200, `"message":"no changes: nothing stored"`},
		{"weight dry run", "/admin/routes/weight?dry_run=true", `{"route": "orders", "target": "orders", "percent": 50}`, 200, `"dry_run":true`},
		{"weight", "/admin/routes/weight", `{"route": "orders", "target": "orders", "percent": 50, "reason": "half"}`, 201, `"stored":{"number":3,"parent":2,"author":"release-bot","reason":"half","action":"set-weight","detail":"set-weight orders orders 50%"`},
		{"weight of an unknown route", "/admin/routes/weight", `{"route": "nope", "target": "orders", "percent": 50, "reason": "x"}`, 422, `no route \"nope\"`},
		{"state", "/admin/routes/state", `{"route": "orders", "state": "migrated", "reason": "ready"}`, 201, `"weight orders: 50% -\u003e 100%`},
		{"state again", "/admin/routes/state", `{"route": "orders", "state": "migrated", "reason": "ready"}`, 200, `"message":"revision 4 (live) already says so: nothing stored"`},
		{"bad state", "/admin/routes/state", `{"route": "orders", "state": "done", "reason": "x"}`, 400, "legacy, canary or migrated"},
		{"rollback", "/admin/routes/rollback", `{"reason": "orders answers 500"}`, 201, `"detail":"rollback to 3"`},
		{"rollback to a revision", "/admin/routes/rollback", `{"rev": 1, "reason": "start over"}`, 201, `"detail":"rollback to 1"`},
		{"rollback to nothing", "/admin/routes/rollback", `{"rev": 77, "reason": "x"}`, 404, "revision 77: no such revision"},
	} {
		if code, body := s.call(t, "POST", tc.path, "release-bot", tc.body); code != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%d %s: %d %s, want %d with %s", i, tc.name, code, body, tc.want, tc.wantBody)
		}
	}

	// Every change is audited: who (the token's client), what, why.
	db, err := pgx.Connect(context.Background(), s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	rows, _ := db.Query(context.Background(), `SELECT actor || ' ' || action || ' ' || revision || ' ' || reason FROM route_audit ORDER BY id`)
	audit, err := pgx.CollectRows(rows, pgx.RowTo[string])
	want := []string{"release-bot apply 1 start at 10%", "release-bot apply 2 more", "release-bot set-weight 3 half",
		"release-bot state 4 ready", "release-bot rollback 5 orders answers 500", "release-bot rollback 6 start over"}
	if err != nil || strings.Join(audit, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit rows (%v):\n%s\nwant:\n%s", err, strings.Join(audit, "\n"), strings.Join(want, "\n"))
	}

	// The reads, with the read scope.
	for _, tc := range []struct{ path, want string }{
		{"/admin/routes/revisions?limit=2", `{"live":6,"revisions":[{"number":6,"parent":5,"author":"release-bot","reason":"start over","action":"rollback","detail":"rollback to 1"`},
		{"/admin/routes/revisions/1", `"text":` + jsonString(v1)},
		{"/admin/routes/revisions/live", `"number":6,`},
		{"/admin/routes/diff?from=1&to=2", `"diff":"~ route orders\n    weight legacy: 90% -\u003e 70%\n    weight orders: 10% -\u003e 30%\n"`},
		{"/admin/routes/diff?from=4", `"from":"revision 4","to":"revision 6"`},
	} {
		if code, body := s.call(t, "GET", tc.path, "dashboard", ""); code != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %s, want %s", tc.path, code, body, tc.want)
		}
	}
	for _, tc := range []struct {
		path string
		want int
	}{{"/admin/routes/revisions/99", 404}, {"/admin/routes/revisions/first", 400}, {"/admin/routes/diff?from=0", 400},
		{"/admin/routes/revisions?limit=0", 400}} {
		if code, body := s.call(t, "GET", tc.path, "dashboard", ""); code != tc.want {
			t.Errorf("GET %s: %d %s, want %d", tc.path, code, body, tc.want)
		}
	}
	// The instance follows, and says so in the status.
	waittest.For(t, "the instance to serve revision 6", func() bool {
		_, body := s.call(t, "GET", "/admin/routes/status", "dashboard", "")
		return strings.Contains(body, `"revision":6,`) && strings.Contains(body, `"state":"current"`)
	})
	if _, body := get(t, s.front+"/api/orders/1"); body != "legacy" && body != "orders" {
		t.Fatalf("front door: %s", body)
	}
}

// Issue 11: admin.listen moves the admin API to a listener of its own,
// over HTTPS with admin.tls, with the same token check (and the scopes
// configured); the operational listener no longer serves it. Issue 12:
// nor the dashboard, which is beside the admin API.
func TestAdminAPIOnItsOwnListener(t *testing.T) {
	port := freePort(t)
	certFile, keyFile, hc := testCert(t, t.TempDir(), "admin.test")
	s := newAdminSetup(t, fmt.Sprintf("admin: {listen: \"127.0.0.1:%d\", scope: ops.release, read_scope: ops.view, tls: {cert_file: %s, key_file: %s}}\n",
		port, certFile, keyFile))
	out := s.cli(t, "idp", "client", "create", "releaser", "--grant", "client_credentials", "--scope", "ops.release")
	m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal(out)
	}
	tok, err := (&clientcredentials.Config{ClientID: "releaser", ClientSecret: m[1], TokenURL: s.front + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.tokens["releaser"] = tok.AccessToken
	admin := fmt.Sprintf("https://127.0.0.1:%d", port)
	for _, tc := range []struct {
		base, client string
		want         int
	}{
		{s.ops, "releaser", 404}, {admin, "", 401}, {admin, "release-bot", 403}, {admin, "releaser", 200},
	} {
		if code, _, body := callWith(t, hc, tc.base, "GET", "/admin/routes/status", tc.client, s.tokens, ""); code != tc.want {
			t.Errorf("%s as %q: %d %s, want %d", tc.base, tc.client, code, body, tc.want)
		}
	}
	// The dashboard moves with it, readable without a token.
	for base, want := range map[string]int{s.ops: 404, admin: 200} {
		if code, _, body := callWith(t, hc, base, "GET", "/dashboard/", "", nil, ""); code != want {
			t.Errorf("the dashboard on %s: %d %.200s, want %d", base, code, body, want)
		}
	}
	if code, _, body := callWith(t, hc, admin, "POST", "/admin/routes/revisions?reason=first", "releaser", s.tokens, read(t, s.rules(t, "v1.yaml", 0))); code != 201 ||
		!strings.Contains(body, "by releaser") {
		t.Fatalf("apply on the admin listener: %d %s", code, body)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
