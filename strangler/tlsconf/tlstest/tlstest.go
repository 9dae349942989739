// Package tlstest makes certificates for tests: a private CA, server and
// client certificates it signs, each written to PEM files in the test's
// directory.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// serial numbers every certificate of a test binary apart.
var serial atomic.Int64

// CA is a private certificate authority.
type CA struct {
	// File is its certificate, PEM: the bundle that trusts it.
	File string
	// Pool trusts it.
	Pool *x509.CertPool
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

// Pair is a certificate signed by a CA, with its key.
type Pair struct {
	CertFile, KeyFile string
	Cert              tls.Certificate
	// Serial is the certificate's serial number.
	Serial *big.Int
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewCA makes a CA named name and writes its certificate into a new
// temporary directory.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{cert: cert, key: key, dir: t.TempDir(), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	ca.File = filepath.Join(ca.dir, name+"-ca.pem")
	write(t, ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// Server signs a server certificate for names (DNS names or IP
// addresses) and writes it to dir/base.crt and dir/base.key (dir empty:
// the CA's directory).
func (ca *CA) Server(t testing.TB, dir, base string, names ...string) Pair {
	t.Helper()
	return ca.ServerUntil(t, dir, base, time.Now().Add(24*time.Hour), names...)
}

// ServerUntil is Server for a certificate that expires at notAfter.
func (ca *CA) ServerUntil(t testing.TB, dir, base string, notAfter time.Time, names ...string) Pair {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return ca.sign(t, dir, base, tmpl, notAfter)
}

// Client signs a client certificate for cn.
func (ca *CA) Client(t testing.TB, dir, base, cn string) Pair {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	return ca.sign(t, dir, base, tmpl, time.Now().Add(24*time.Hour))
}

func (ca *CA) sign(t testing.TB, dir, base string, tmpl *x509.Certificate, notAfter time.Time) Pair {
	t.Helper()
	if dir == "" {
		dir = ca.dir
	}
	key := newKey(t)
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{CertFile: filepath.Join(dir, base+".crt"), KeyFile: filepath.Join(dir, base+".key"), Serial: tmpl.SerialNumber}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	write(t, p.KeyFile, keyPEM)
	write(t, p.CertFile, certPEM)
	if p.Cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// ClientConfig trusts ca for serverName, presenting pair if it is not
// nil.
func (ca *CA) ClientConfig(serverName string, pair *Pair) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool, ServerName: serverName}
	if pair != nil {
		c.Certificates = []tls.Certificate{pair.Cert}
	}
	return c
}
