package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/strangler/tlsconf"
)

// selfEndpoint is how ficus calls its own front door: web-hook deliveries
// go through the gateway, and the adapters ask the IDP for their clients'
// tokens. It is derived here, once, from the bound listener, so that every
// internal caller uses the same scheme, address and TLS trust.
type selfEndpoint struct {
	// URL is scheme://host:port, with an address that can be dialled: a
	// listener on all interfaces (0.0.0.0, ::) is called on 127.0.0.1.
	URL string
	// Transport trusts exactly the certificate the front door serves (and
	// no other) when listen.tls is set.
	Transport http.RoundTripper
}

// newSelfEndpoint derives the internal endpoint from the listener's
// address and the front door's certificate (nil: plain HTTP).
func newSelfEndpoint(addr net.Addr, kp *tlsconf.Keypair) (selfEndpoint, error) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return selfEndpoint{}, fmt.Errorf("listen.addr: %s is not a TCP address", addr)
	}
	ip := tcp.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1) // dual-stack: a listener on :: accepts it too
	}
	host := net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
	if kp == nil {
		return selfEndpoint{URL: "http://" + host, Transport: internalTransport(nil)}, nil
	}
	pin := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain and the name are not what makes this connection
		// trusted: it is ficus calling itself, and the peer must present
		// the very certificate ficus serves (checked below), whatever
		// names it carries and whoever issued it. The certificate is
		// reloaded when its files change: the one served now or the one
		// it replaced (a handshake that began before the reload).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !kp.Serves(cs.PeerCertificates[0].Raw) {
				return errors.New("internal call: the peer is not this ficus (certificate differs from listen.tls.cert_file)")
			}
			return nil
		},
	}
	if names := kp.Leaf().DNSNames; len(names) > 0 {
		pin.ServerName = names[0] // SNI, as an outside client would send
	}
	return selfEndpoint{URL: "https://" + host, Transport: internalTransport(pin)}, nil
}

func internalTransport(tc *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // never through an HTTP(S)_PROXY: the front door is local
	t.TLSClientConfig = tc
	t.MaxIdleConnsPerHost = 64
	return t
}

// tokenPath is the IDP's token endpoint below its base URL.
const tokenPath = "/oauth2/token"

// tokenEndpoint is where the adapters ask for their clients' tokens, and
// the client they ask with.
type tokenEndpoint struct {
	URL    string
	Client *http.Client
}

// tokenEndpoint is this ficus's IDP through the front door, or the remote
// IDP when one is configured, called with remote (gateway.remote_idp.tls).
func (s selfEndpoint) tokenEndpoint(cfg *config.Config, remote *http.Client) tokenEndpoint {
	if r := cfg.Gateway.RemoteIDP.Issuer; r != "" {
		return tokenEndpoint{URL: r + tokenPath, Client: remote}
	}
	return tokenEndpoint{URL: s.URL + tokenPath, Client: s.client(10 * time.Second)}
}

// client is an HTTP client for internal calls with the given timeout.
func (s selfEndpoint) client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: s.Transport, Timeout: timeout}
}
