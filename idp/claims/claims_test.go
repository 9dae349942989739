package claims_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp/claims"
	"github.com/golang-jwt/jwt/v5"
)

func TestPutOverridesProfileClaims(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a := claims.Access{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://idp", Subject: "u1", Audience: jwt.ClaimStrings{"svc"},
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: "j1"}, ClientID: "app", Level: "logged_on"}
	m := jwt.MapClaims{"sub": "forged", "scope": "admin", "name": "Ada"}
	a.Put(m)
	want := jwt.MapClaims{"iss": "https://idp", "sub": "u1", "aud": "svc", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
		"jti": "j1", "client_id": "app", "level": "logged_on", "name": "Ada"}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("claims = %v, want %v", m, want)
	}
}

func TestHasScope(t *testing.T) {
	a := claims.Access{Scope: "orders.read  orders.write"}
	if !a.HasScope("orders.write") || a.HasScope("orders") {
		t.Fatal("HasScope matches whole scopes only")
	}
}
