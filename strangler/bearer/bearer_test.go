package bearer_test

import (
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/strangler/bearer"
)

func TestChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		code, desc, scope string
		want              string
	}{
		{"no credentials", "", "", "", `Bearer realm="ficus"`},
		{"no credentials, a description", "", "authentication required", "", `Bearer realm="ficus"`},
		{"invalid token", "invalid_token", "", "", `Bearer realm="ficus", error="invalid_token"`},
		{"described", "invalid_token", "the token is not active", "",
			`Bearer realm="ficus", error="invalid_token", error_description="the token is not active"`},
		{"scope", "insufficient_scope", "missing scope", "orders.read orders.write",
			`Bearer realm="ficus", error="insufficient_scope", error_description="missing scope", scope="orders.read orders.write"`},
		{"scope, no description", "insufficient_scope", "", "orders.admin",
			`Bearer realm="ficus", error="insufficient_scope", scope="orders.admin"`},
		{"quotes escaped", "invalid_request", `a "Bearer" token`, "", `Bearer realm="ficus", error="invalid_request", error_description="a \"Bearer\" token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bearer.Challenge(tt.code, tt.desc, tt.scope); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		given string
		want  string // empty: no token
	}{
		{"bearer", "Bearer abc.def", "abc.def"},
		{"any case", "bEaReR abc", "abc"},
		{"surrounding space", "Bearer   abc  ", "abc"},
		{"no header", "", ""},
		{"basic", "Basic eDp5", ""},
		{"scheme only", "Bearer ", ""},
		{"blank token", "Bearer    ", ""},
		{"two tokens", "Bearer a b", ""},
		{"a list", "Bearer a,b", ""},
		{"a tab", "Bearer a\tb", ""},
		{"longest", "Bearer " + strings.Repeat("a", bearer.MaxTokenLen), strings.Repeat("a", bearer.MaxTokenLen)},
		{"too long", "Bearer " + strings.Repeat("a", bearer.MaxTokenLen+1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := bearer.Token(tt.given)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("Token(%q) = %q, %v; want %q", tt.given, got, ok, tt.want)
			}
		})
	}
}
