package adapters_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/ficus-gw/ficus/adapters"
)

func TestClientAddrTrustsOnlyConfiguredProxies(t *testing.T) {
	t.Parallel()
	addr := adapters.ClientAddr([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct sender: the socket, XFF ignored", "203.0.113.5:4000", "198.51.100.1", "203.0.113.5"},
		{"through a trusted proxy", "10.1.1.1:4000", "198.51.100.7", "198.51.100.7"},
		{"spoofed hop before a trusted proxy", "10.1.1.1:4000", "192.0.2.99, 198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies", "10.1.1.1:4000", "198.51.100.7, 10.2.2.2", "198.51.100.7"},
		{"malformed chain", "10.1.1.1:4000", "nonsense", "10.1.1.1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", tt.xff)
		if got := addr(r).String(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
