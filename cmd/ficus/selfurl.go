package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
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
	// Cert is the front door's certificate, loaded once: the server
	// serves it and internal calls pin it.
	Cert *tls.Certificate
}

// newSelfEndpoint derives the internal endpoint from the listener's
// address and the listen.tls files (both empty: plain HTTP).
func newSelfEndpoint(addr net.Addr, certFile, keyFile string) (selfEndpoint, error) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return selfEndpoint{}, fmt.Errorf("listen.addr: %s is not a TCP address", addr)
	}
	ip := tcp.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1) // dual-stack: a listener on :: accepts it too
	}
	host := net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
	if certFile == "" {
		return selfEndpoint{URL: "http://" + host, Transport: internalTransport(nil)}, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return selfEndpoint{}, fmt.Errorf("listen.tls: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return selfEndpoint{}, fmt.Errorf("listen.tls: cert_file: %w", err)
		}
	}
	pin := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain and the name are not what makes this connection
		// trusted: it is ficus calling itself, and the peer must present
		// the very certificate ficus serves (checked below), whatever
		// names it carries and whoever issued it.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, leaf.Raw) {
				return errors.New("internal call: the peer is not this ficus (certificate differs from listen.tls.cert_file)")
			}
			return nil
		},
	}
	if len(leaf.DNSNames) > 0 {
		pin.ServerName = leaf.DNSNames[0] // SNI, as an outside client would send
	}
	return selfEndpoint{URL: "https://" + host, Transport: internalTransport(pin), Cert: &cert}, nil
}

func internalTransport(tc *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // never through an HTTP(S)_PROXY: the front door is local
	t.TLSClientConfig = tc
	t.MaxIdleConnsPerHost = 64
	return t
}

// tokenEndpoint is where the adapters ask for their clients' tokens, and
// the client to ask with: this ficus's IDP through the front door, or the
// remote IDP (over the system's trust) when one is configured.
func (s selfEndpoint) tokenEndpoint(cfg *config.Config) (string, *http.Client) {
	if r := cfg.Gateway.RemoteIDP.Issuer; r != "" {
		return r + "/oauth2/token", &http.Client{Timeout: 10 * time.Second}
	}
	return s.URL + "/oauth2/token", s.client(10 * time.Second)
}

// client is an HTTP client for internal calls with the given timeout.
func (s selfEndpoint) client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: s.Transport, Timeout: timeout}
}
