package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
)

// Versions are the values a min_version setting takes.
var Versions = []string{"1.2", "1.3"}

// ParseVersion reads a minimum TLS version: "" (the default, 1.2), "1.2"
// or "1.3". TLS 1.0 and 1.1 are refused (RFC 8996 deprecates them).
func ParseVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, fmt.Errorf("TLS %s is not allowed: RFC 8996 deprecates TLS 1.0 and 1.1 (use 1.2 or 1.3)", s)
	}
	return 0, fmt.Errorf("must be 1.2 or 1.3 (got %q)", s)
}

// http2Suites are the TLS 1.2 suites of which HTTP/2 needs one (RFC 9113,
// section 9.2.2; Go's server refuses a list without them).
var http2Suites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}

// AllowedSuites are the TLS 1.2 cipher suites a list may name: those with
// an ephemeral key exchange (ECDHE) and an AEAD cipher (AES-GCM,
// ChaCha20-Poly1305). TLS 1.3 suites are not configurable (Go chooses).
func AllowedSuites() []string {
	var out []string
	for _, s := range tls.CipherSuites() {
		if allowed(s) {
			out = append(out, s.Name)
		}
	}
	return out
}

// defaultSuites are the TLS 1.2 suites a listener serves when its policy
// names none: every allowed suite, in Go's order of preference. Go's own
// default list also has ECDHE suites with AES-CBC and SHA-1, which a
// policy may not name; the default does not offer them either.
func defaultSuites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		if allowed(s) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func allowed(s *tls.CipherSuite) bool {
	return strings.HasPrefix(s.Name, "TLS_ECDHE_") && (strings.Contains(s.Name, "_GCM_") || strings.Contains(s.Name, "CHACHA20"))
}

// CipherSuites turns names into the IDs of a TLS 1.2 cipher suite list.
// An empty list is nil: Go's defaults. Every name must be one of
// AllowedSuites; insecure, CBC and TLS 1.3 suites are refused by name,
// and a list without one of the two suites HTTP/2 needs is refused. The
// error names every problem, one per line.
func CipherSuites(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return nil, nil
	}
	byName := map[string]*tls.CipherSuite{}
	for _, s := range tls.CipherSuites() {
		byName[s.Name] = s
	}
	insecure := map[string]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.Name] = true
	}
	var errs []error
	var ids []uint16
	h2 := false
	for i, n := range names {
		s := byName[n]
		switch {
		case insecure[n]:
			errs = append(errs, fmt.Errorf("[%d]: %s is insecure", i, n))
		case s == nil:
			errs = append(errs, fmt.Errorf("[%d]: %s is no cipher suite Go knows; allowed: %s", i, n, strings.Join(AllowedSuites(), ", ")))
		case len(s.SupportedVersions) == 1 && s.SupportedVersions[0] == tls.VersionTLS13:
			errs = append(errs, fmt.Errorf("[%d]: %s is a TLS 1.3 suite, which is not configurable (the list is for TLS 1.2)", i, n))
		case !allowed(s):
			errs = append(errs, fmt.Errorf("[%d]: %s is refused: only ECDHE suites with AES-GCM or ChaCha20-Poly1305 are allowed", i, n))
		default:
			ids = append(ids, s.ID)
			for _, id := range http2Suites {
				h2 = h2 || id == s.ID
			}
		}
	}
	if len(errs) == 0 && !h2 {
		errs = append(errs, errors.New("needs TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, which HTTP/2 requires"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ids, nil
}

// Policy is a listener's TLS policy as a configuration writes it.
type Policy struct {
	// MinVersion is "1.2" (the default when empty) or "1.3".
	MinVersion string
	// CipherSuites are TLS 1.2 suites by name; empty: AllowedSuites.
	CipherSuites []string
}

// Check reports what is wrong with p, without building anything.
func (p Policy) Check() error {
	var errs []error
	if _, err := ParseVersion(p.MinVersion); err != nil {
		errs = append(errs, fmt.Errorf("min_version: %w", err))
	}
	if _, err := CipherSuites(p.CipherSuites); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			errs = append(errs, fmt.Errorf("cipher_suites%s", prefixed(line)))
		}
	}
	return errors.Join(errs...)
}

// prefixed joins a list's problem to its key: "[1]: x" stays "[1]: x",
// anything else becomes ": x".
func prefixed(line string) string {
	if strings.HasPrefix(line, "[") {
		return line
	}
	return ": " + line
}

// Server is the TLS configuration of a listener serving kp under p: it
// offers HTTP/2 and HTTP/1.1 by ALPN, and takes the certificate from kp
// on every handshake, so a reloaded pair is served to new connections.
func Server(kp *Keypair, p Policy) (*tls.Config, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	minV, _ := ParseVersion(p.MinVersion)
	suites, _ := CipherSuites(p.CipherSuites)
	if suites == nil {
		suites = defaultSuites()
	}
	return &tls.Config{
		MinVersion:     minV,
		CipherSuites:   suites,
		GetCertificate: kp.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}, nil
}
