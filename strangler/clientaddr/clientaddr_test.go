package clientaddr_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/ficus-gw/ficus/strangler/clientaddr"
)

func TestAddrTrustsOnlyConfiguredProxies(t *testing.T) {
	t.Parallel()
	r := clientaddr.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct client: the socket, XFF ignored", "203.0.113.5:4000", "198.51.100.1", "203.0.113.5"},
		{"through a trusted proxy", "10.1.1.1:4000", "198.51.100.7", "198.51.100.7"},
		{"spoofed hop before a trusted proxy", "10.1.1.1:4000", "192.0.2.99, 198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies", "10.1.1.1:4000", "198.51.100.7, 10.2.2.2", "198.51.100.7"},
		{"malformed chain", "10.1.1.1:4000", "nonsense", "10.1.1.1"},
		{"only trusted hops", "10.1.1.1:4000", "10.3.3.3", "10.1.1.1"},
		{"mapped IPv4 peer", "[::ffff:203.0.113.5]:4000", "198.51.100.1", "203.0.113.5"},
		{"mapped IPv4 trusted peer", "[::ffff:10.1.1.1]:4000", "::ffff:198.51.100.7", "198.51.100.7"},
		{"IPv6 client", "[2001:db8::1]:4000", "198.51.100.1", "2001:db8::1"},
		{"unparsable peer", "pipe", "198.51.100.1", "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", nil)
			req.RemoteAddr = tt.remote
			req.Header.Set("X-Forwarded-For", tt.xff)
			if got := r.Addr(req).String(); got != tt.want {
				t.Errorf("%s, want %s", got, tt.want)
			}
		})
	}
}

func TestZeroResolverTrustsNobody(t *testing.T) {
	t.Parallel()
	var r *clientaddr.Resolver
	req := httptest.NewRequest("POST", "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := r.Addr(req).String(); got != "127.0.0.1" {
		t.Fatalf("%s, want the socket peer", got)
	}
	if got := clientaddr.New(nil).Addr(req).String(); got != "127.0.0.1" {
		t.Fatalf("%s, want the socket peer", got)
	}
}
