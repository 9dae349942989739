package tlsconf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchDebounce is how long Watch waits for a burst of file events to end
// before it reloads (a renewal writes the certificate and the key apart).
const WatchDebounce = 150 * time.Millisecond

// ClientRecheck is the least time between two reads of a client
// certificate's files by GetClientCertificate.
const ClientRecheck = time.Second

// Keypair is a certificate and its key, read from two PEM files and
// reloaded from them while it is in use: a listener takes it on each
// handshake (GetCertificate), a client when a server asks for it
// (GetClientCertificate). A reload that finds a broken pair (unreadable,
// not PEM, a key that does not match) keeps the pair it had. Safe for
// concurrent use; the zero value is not usable, use LoadKeypair.
type Keypair struct {
	certFile, keyFile string
	cur               atomic.Pointer[pair]
	mu                sync.Mutex // serialises reloads
	checked           atomic.Int64
	// onReload, if set, hears of every reload that changed the pair or
	// failed, including those GetClientCertificate makes.
	onReload func(changed bool, err error)
}

// pair is one loaded certificate; prev is the leaf it replaced.
type pair struct {
	cert *tls.Certificate
	sum  [sha256.Size]byte
	prev *x509.Certificate
}

// LoadKeypair reads the pair once; an error here is the files' own.
// onReload, if not nil, is told of each later reload that changed the
// pair (changed true) or failed (err set; the old pair stays).
func LoadKeypair(certFile, keyFile string, onReload func(changed bool, err error)) (*Keypair, error) {
	k := &Keypair{certFile: certFile, keyFile: keyFile, onReload: onReload}
	p, err := k.read()
	if err != nil {
		return nil, err
	}
	k.cur.Store(p)
	k.checked.Store(time.Now().UnixNano())
	return k, nil
}

// read loads both files into a pair, checking that the key matches.
func (k *Keypair) read() (*pair, error) {
	cb, err := os.ReadFile(k.certFile)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(k.keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", k.certFile, k.keyFile, err)
	}
	// X509KeyPair parses the leaf since Go 1.23.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", k.certFile, err)
		}
	}
	h := sha256.New()
	h.Write(cb)
	h.Write([]byte{0})
	h.Write(kb)
	p := &pair{cert: &cert}
	h.Sum(p.sum[:0])
	return p, nil
}

// Reload reads the files again. changed is false when they hold the pair
// already served; on an error the pair served stays.
func (k *Keypair) Reload() (changed bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.checked.Store(time.Now().UnixNano())
	p, err := k.read()
	old := k.cur.Load()
	if err == nil && p.sum != old.sum {
		p.prev = old.cert.Leaf
		k.cur.Store(p)
		changed = true
	}
	if k.onReload != nil && (changed || err != nil) {
		k.onReload(changed, err)
	}
	return changed, err
}

// Files are the certificate's and the key's paths.
func (k *Keypair) Files() (certFile, keyFile string) { return k.certFile, k.keyFile }

// Leaf is the certificate served now, parsed.
func (k *Keypair) Leaf() *x509.Certificate { return k.cur.Load().cert.Leaf }

// Serves reports whether raw (a DER certificate) is the one served now or
// the one it replaced: a connection whose handshake began before a reload
// still presents the one before.
func (k *Keypair) Serves(raw []byte) bool {
	p := k.cur.Load()
	return bytes.Equal(p.cert.Leaf.Raw, raw) || p.prev != nil && bytes.Equal(p.prev.Raw, raw)
}

// GetCertificate is tls.Config.GetCertificate: the pair served now.
func (k *Keypair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cur.Load().cert, nil
}

// GetClientCertificate is tls.Config.GetClientCertificate: the pair,
// read again from its files when ClientRecheck has passed since the last
// read, so a renewed client certificate is presented without a restart
// and without a watcher per upstream.
func (k *Keypair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if time.Since(time.Unix(0, k.checked.Load())) >= ClientRecheck {
		_, _ = k.Reload() // a failure keeps the old pair; onReload hears of it
	}
	return k.cur.Load().cert, nil
}

// Watch reloads the pair when its files change, until ctx ends. It
// watches the files' directories, so a certificate written anew and
// renamed into place, a Kubernetes Secret's symlink swap and a
// cert-manager renewal are all seen.
func (k *Keypair) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	dirs := map[string]bool{filepath.Dir(k.certFile): true, filepath.Dir(k.keyFile): true}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			return err
		}
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if k.onReload != nil {
				k.onReload(false, fmt.Errorf("watching %s: %w", filepath.Dir(k.certFile), err))
			}
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			timer = time.After(WatchDebounce)
		case <-timer:
			timer = nil
			_, _ = k.Reload()
		}
	}
}
