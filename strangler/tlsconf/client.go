package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Client is the TLS of calls to an https server as a configuration
// writes it. The zero value trusts the system's roots and presents no
// certificate.
type Client struct {
	// CAFile is a PEM bundle of the CAs trusted for the server's
	// certificate, in place of the system's roots. Empty: the system's.
	CAFile string
	// ServerName is the name the server's certificate must carry (and
	// the SNI sent). Empty: the host of the URL called.
	ServerName string
	// CertFile and KeyFile are the client certificate presented when the
	// server asks for one (mTLS); both or neither.
	CertFile, KeyFile string
	// MinVersion is "1.2" (the default when empty) or "1.3".
	MinVersion string
}

// IsZero reports whether c changes nothing.
func (c Client) IsZero() bool { return c == Client{} }

// LoadCAs reads a PEM bundle of CA certificates; a file without one is an
// error, so a wrong path or format never silently trusts nothing.
func LoadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Config builds the tls.Config of c, reading its files once; the client
// certificate is read again when its files change (Keypair,
// GetClientCertificate). onReload is passed to that Keypair.
func (c Client) Config(onReload func(changed bool, err error)) (*tls.Config, error) {
	minV, err := ParseVersion(c.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("min_version: %w", err)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	tc := &tls.Config{MinVersion: minV, ServerName: c.ServerName}
	if c.CAFile != "" {
		if tc.RootCAs, err = LoadCAs(c.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
	}
	if c.CertFile != "" {
		kp, err := LoadKeypair(c.CertFile, c.KeyFile, onReload)
		if err != nil {
			return nil, fmt.Errorf("cert_file, key_file: %w", err)
		}
		tc.GetClientCertificate = kp.GetClientCertificate
	}
	return tc, nil
}

// HTTPClient is an http.Client with c's TLS and timeout, on a transport
// of its own (never the process's default), trying HTTP/2 by ALPN.
func (c Client) HTTPClient(timeout time.Duration, onReload func(changed bool, err error)) (*http.Client, error) {
	tc, err := c.Config(onReload)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	t.ForceAttemptHTTP2 = true
	return &http.Client{Transport: t, Timeout: timeout}, nil
}
