package idp_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
)

// Issue 8 item 18 (idp.md): "a logged-on access token never outlives the
// session" must hold also when the session is shorter than an access
// token, as a client's own logged-on refresh lifetime may make it.
func TestLoggedOnAccessTokenNeverOutlivesTheSession(t *testing.T) {
	ti := newTestIDP(t, false)
	secret, err := ti.p.CreateClient(context.Background(), idp.NewClient{ID: "kiosk", FirstParty: true,
		Grants: []string{idp.GrantPassword, idp.GrantRefreshToken}, Scopes: []string{"profile"}, LoggedOnRefreshTTL: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ti.secret["kiosk"] = secret
	code, _, b := ti.post(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}}, "kiosk")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if exp := decode(t, b)["expires_in"].(float64); exp > 30*60 {
		t.Fatalf("the access token lives %vs, past the 30 min session", exp)
	}
}
