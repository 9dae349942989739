package main

import (
	"net"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/strangler/tlsconf"
)

// Issue 8, item 14: the internal URL is derived from the listener: its
// scheme, and an address one can dial (never 0.0.0.0 or ::).
func TestSelfEndpointFromTheListener(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr net.Addr
		tls  bool
		want string
	}{
		{"loopback", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, false, "http://127.0.0.1:8080"},
		{"all IPv4 interfaces", &net.TCPAddr{IP: net.IPv4zero, Port: 8080}, false, "http://127.0.0.1:8080"},
		{"all interfaces", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8443}, true, "https://127.0.0.1:8443"},
		{"one address", &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, true, "https://10.1.2.3:443"},
		{"IPv6 loopback", &net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, false, "http://[::1]:8080"},
	}
	dir := t.TempDir()
	certFile, keyFile, _ := testCert(t, dir, "ficus.test")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kp *tlsconf.Keypair
			if tt.tls {
				var err error
				if kp, err = tlsconf.LoadKeypair(certFile, keyFile, nil); err != nil {
					t.Fatal(err)
				}
			}
			self, err := newSelfEndpoint(tt.addr, kp)
			if err != nil {
				t.Fatal(err)
			}
			if self.URL != tt.want {
				t.Fatalf("URL %q, want %q", self.URL, tt.want)
			}
		})
	}
	if _, err := newSelfEndpoint(&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, nil); err == nil || !strings.Contains(err.Error(), "not a TCP address") {
		t.Fatalf("a unix socket: %v", err)
	}
}
