package config

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ficus-gw/ficus/adapters/mobile"
)

// Resolved is what a configuration refers to outside itself, read by
// Resolve for one purpose: the secrets that purpose uses.
type Resolved struct {
	// DSN is store.dsn's value, for ForStore and up when store.driver is
	// postgres; empty otherwise.
	DSN string
	// KEK is idp.key_encryption_key, decoded (32 bytes), for ForIDP and
	// up; nil when it is not set.
	KEK []byte
	// PairwiseSecret is idp.oidc.pairwise_secret, decoded (at least 32
	// bytes), for ForIDP and up; nil when it is not set.
	PairwiseSecret []byte
	// RemoteIDPSecret is gateway.remote_idp.client_secret's value, for
	// ForServe; empty when it is not set.
	RemoteIDPSecret string
	// LegacyDSN is idp.legacy_login.postgres.dsn's value, for ForServe;
	// empty when it is not set.
	LegacyDSN string
	// TracingHeaders are tracing.headers' values, for ForServe.
	TracingHeaders map[string]string

	secrets map[string]string // every web-hook, mobile and federation secret read, by reference (ForServe)
}

// Secret returns the value of a web-hook, mobile or federation secret reference that
// Resolve read: the resolver that adapters.Config.Build and mobile.New
// take. References are read for ForServe only; below, every reference
// is an error.
func (r *Resolved) Secret(ref string) (string, error) {
	if v, ok := r.secrets[ref]; ok {
		return v, nil
	}
	return "", fmt.Errorf("secret %s was not resolved for this command", ref)
}

// Resolve reads what c refers to outside itself for purpose p, changing
// nothing in c: the secrets p uses (the others are checked for their form
// only, env:NAME or file:PATH), the route and TLS files (ForServe), and it
// builds the web-hook and mobile adapters to find what they refuse. The
// error is an Errors value holding every problem, by key path.
func (c *Config) Resolve(p Purpose) (*Resolved, error) {
	r, errs := c.resolve(p)
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

func (c *Config) resolve(p Purpose) (*Resolved, Errors) {
	r := &Resolved{secrets: map[string]string{}}
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, Error{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	var err error
	if c.Store.Driver == "postgres" && c.Store.DSN != "" && p >= ForStore {
		if r.DSN, err = c.Store.DSN.Resolve(); err != nil {
			add("store.dsn", "%v", err)
		}
	}
	if c.IDP.KeyEncryptionKey != "" && p >= ForIDP {
		if v, err := c.IDP.KeyEncryptionKey.Resolve(); err != nil {
			add("idp.key_encryption_key", "%v", err)
		} else if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err != nil || len(k) != 32 {
			add("idp.key_encryption_key", "must be 32 bytes, base64 (openssl rand -base64 32)")
		} else {
			r.KEK = k
		}
	}
	if c.IDP.OIDC.PairwiseSecret != "" && p >= ForIDP {
		if v, err := c.IDP.OIDC.PairwiseSecret.Resolve(); err != nil {
			add("idp.oidc.pairwise_secret", "%v", err)
		} else if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err != nil || len(k) < 32 {
			add("idp.oidc.pairwise_secret", "must be at least 32 bytes, base64 (openssl rand -base64 32)")
		} else {
			r.PairwiseSecret = k
		}
	}
	if l := c.IDP.LegacyLogin.Postgres; l != nil && l.DSN != "" && p >= ForServe {
		if r.LegacyDSN, err = l.DSN.Resolve(); err != nil {
			add("idp.legacy_login.postgres.dsn", "%v", err)
		}
	}
	if c.Gateway.RemoteIDP.ClientSecret != "" && p >= ForServe {
		if r.RemoteIDPSecret, err = c.Gateway.RemoteIDP.ClientSecret.Resolve(); err != nil {
			add("gateway.remote_idp.client_secret", "%v", err)
		}
	}

	// The adapters' secrets: read for serve, checked for their form only
	// by the other commands, which do not use them.
	resolve := checkReference
	if p >= ForServe {
		resolve = func(ref string) (string, error) {
			v, err := Secret(ref).Resolve()
			if err == nil {
				r.secrets[ref] = v
			}
			return v, err
		}
	}
	for i, a := range c.Webhooks.Adapters {
		if _, err := a.Build(resolve, nil); err != nil {
			addLines(add, fmt.Sprintf("webhooks.adapters[%d]", i), err)
		}
	}
	for i, pc := range c.IDP.Federation.Providers {
		if pc.ClientSecret != "" {
			if _, err := resolve(pc.ClientSecret); err != nil {
				add(fmt.Sprintf("idp.federation.providers[%d].client_secret", i), "%v", err)
			}
		}
	}
	for i, app := range c.Mobile.Apps {
		if _, err := mobile.New(mobile.Config{Apps: []mobile.App{app}}, resolve, "", nil); err != nil {
			addLines(add, fmt.Sprintf("mobile.apps[%d]", i), err)
		}
	}

	if p < ForServe {
		return r, errs
	}
	c.resolveTracing(r, add)
	// Each app is built alone above; one key for two apps is found here,
	// on the values (two references may hold the same key).
	owner := map[string]string{}
	for i, app := range c.Mobile.Apps {
		key, ok := r.secrets[app.Key]
		if !ok || len(key) < 16 {
			continue // reported above
		}
		if other, dup := owner[key]; dup {
			add(fmt.Sprintf("mobile.apps[%d]", i), "mobile app %q: key: the same key as app %q", app.Name, other)
			continue
		}
		owner[key] = app.Name
	}
	for _, f := range []struct{ field, path string }{{"routes.file", c.Routes.File},
		{"listen.tls.cert_file", c.Listen.TLS.CertFile}, {"listen.tls.key_file", c.Listen.TLS.KeyFile},
		{"admin.tls.cert_file", c.Admin.TLS.CertFile}, {"admin.tls.key_file", c.Admin.TLS.KeyFile},
		{"gateway.remote_idp.tls.ca_file", c.Gateway.RemoteIDP.TLS.CAFile},
		{"gateway.remote_idp.tls.cert_file", c.Gateway.RemoteIDP.TLS.CertFile},
		{"gateway.remote_idp.tls.key_file", c.Gateway.RemoteIDP.TLS.KeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				add(f.field, "%v", err)
			}
		}
	}
	if len(errs) > 0 {
		return r, errs
	}
	// The files are there: are they a certificate and its key, a bundle?
	for _, l := range []struct {
		key string
		tls TLS
	}{{"listen.tls", c.Listen.TLS}, {"admin.tls", c.Admin.TLS}} {
		if l.tls.CertFile != "" {
			if _, err := tls.LoadX509KeyPair(l.tls.CertFile, l.tls.KeyFile); err != nil {
				add(l.key+".cert_file", "%v", err)
			}
		}
	}
	if rt := c.Gateway.RemoteIDP.TLS; rt != (ClientTLS{}) {
		if _, err := rt.Client().Config(nil); err != nil {
			addKeyed(add, "gateway.remote_idp.tls", err)
		}
	}
	return r, errs
}

// addLines adds each line of err as a problem of field.
func addLines(add func(field, format string, args ...any), field string, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		add(field, "%s", line)
	}
}

// checkReference accepts a well-formed reference without reading it: the
// resolver of commands that do not use the secret.
func checkReference(ref string) (string, error) {
	if !isReference(ref) {
		return "", errors.New("not a secret reference (env:NAME or file:PATH)")
	}
	// Long enough for every length check made on secrets at start.
	return strings.Repeat("0", 64), nil
}
