package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/strangler/tlsconf/tlstest"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/routes"
)

// everything is a configuration that refers to every kind of secret, and
// to files in dir.
func everything(dir string) Config {
	c := Defaults()
	c.Store = Store{Driver: "postgres", DSN: "env:FICUS_TEST_R_DSN", MaxConns: 16}
	c.Routes.File = filepath.Join(dir, "routes.yaml")
	c.Listen.TLS = TLS{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	c.IDP.Issuer = "https://login.example.com"
	c.IDP.KeyEncryptionKey = "env:FICUS_TEST_R_KEK"
	c.Gateway.RemoteIDP = RemoteIDP{Issuer: "https://idp.example.com", ClientID: "gw", ClientSecret: Secret("file:" + filepath.Join(dir, "gw-secret"))}
	c.Webhooks.Adapters = []adapters.Config{{Name: "s", Path: "/hooks/s", Target: "/t", ClientID: "s", ClientSecret: "env:FICUS_TEST_R_ADAPTER",
		Schemes: []adapters.SchemeConfig{{Type: "stripe", Secrets: []string{"env:FICUS_TEST_R_WHSEC"}}}}}
	c.Mobile = mobile.Config{Apps: []mobile.App{{Name: "ios", Key: "env:FICUS_TEST_R_APPKEY", ClientID: "ios", ClientSecret: "env:FICUS_TEST_R_APPSECRET"}}}
	return c
}

// provide makes every secret and file of everything exist.
func provide(t *testing.T, c Config) {
	t.Helper()
	if err := os.WriteFile(c.Routes.File, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A real pair where the configuration names it: serve reads it.
	pair := tlstest.NewCA(t, "resolve").Server(t, "", "front", "login.example.com")
	for _, f := range [][2]string{{pair.CertFile, c.Listen.TLS.CertFile}, {pair.KeyFile, c.Listen.TLS.KeyFile}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(strings.TrimPrefix(string(c.Gateway.RemoteIDP.ClientSecret), "file:"), []byte("gw-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FICUS_TEST_R_DSN", "postgres://db/ficus")
	t.Setenv("FICUS_TEST_R_KEK", base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32))))
	t.Setenv("FICUS_TEST_R_ADAPTER", "adapter-secret")
	t.Setenv("FICUS_TEST_R_WHSEC", "whsec_x")
	t.Setenv("FICUS_TEST_R_APPKEY", "an-app-key-of-some-length")
	t.Setenv("FICUS_TEST_R_APPSECRET", "app-secret")
}

// Issue 9: Validate looks at nothing outside the configuration: missing
// secrets and files are no concern of it, at any purpose.
func TestValidateHasNoSideEffects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := everything(dir) // no secret set, no file written
	for _, p := range []Purpose{ForCheck, ForStore, ForIDP, ForServe} {
		if err := c.Validate(p); err != nil {
			t.Errorf("purpose %d: %v", p, err)
		}
	}
	if !reflect.DeepEqual(c, everything(dir)) {
		t.Error("Validate changed the configuration")
	}
	// What it does check, it checks without the outside world.
	c.Webhooks.Adapters = append(c.Webhooks.Adapters, c.Webhooks.Adapters[0])
	c.Routes.File = ""
	err := c.Validate(ForServe)
	for _, want := range []string{"webhooks.adapters[1].name: s is used by another adapter", "webhooks.adapters[1].path: /hooks/s is used", "routes.file: is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// Issue 9: Resolve reads what the purpose uses, and only that; it names
// every missing secret and file at once, by key; it changes nothing in the
// configuration.
func TestResolveReadsWhatThePurposeUses(t *testing.T) {
	dir := t.TempDir()
	c := everything(dir)
	_, err := c.Resolve(ForServe)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("%T is not Errors: %v", err, err)
	}
	for _, want := range []string{"store.dsn: environment variable FICUS_TEST_R_DSN is not set", "idp.key_encryption_key: environment variable FICUS_TEST_R_KEK",
		"gateway.remote_idp.client_secret: open ", "webhooks.adapters[0]: ", "FICUS_TEST_R_WHSEC", "mobile.apps[0]: ",
		"routes.file: stat ", "listen.tls.cert_file: stat ", "listen.tls.key_file: stat "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	for _, tc := range []struct {
		p    Purpose
		want []string // the fields with problems
	}{
		{ForCheck, nil},
		{ForStore, []string{"store.dsn"}},
		{ForIDP, []string{"store.dsn", "idp.key_encryption_key"}},
	} {
		r, err := c.Resolve(tc.p)
		var got []string
		if err != nil {
			for _, e := range err.(Errors) {
				got = append(got, e.Field)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("purpose %d: problems with %v, want %v (%v)", tc.p, got, tc.want, err)
		}
		if err == nil {
			if _, err := r.Secret("env:FICUS_TEST_R_WHSEC"); err == nil {
				t.Errorf("purpose %d resolved a web-hook secret", tc.p)
			}
		}
	}

	provide(t, c)
	r, err := c.Resolve(ForServe)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, everything(dir)) {
		t.Error("Resolve changed the configuration")
	}
	if r.DSN != "postgres://db/ficus" || string(r.KEK) != strings.Repeat("k", 32) || r.RemoteIDPSecret != "gw-secret" {
		t.Errorf("resolved %q %q %q", r.DSN, r.KEK, r.RemoteIDPSecret)
	}
	for ref, want := range map[string]string{"env:FICUS_TEST_R_ADAPTER": "adapter-secret", "env:FICUS_TEST_R_WHSEC": "whsec_x",
		"env:FICUS_TEST_R_APPKEY": "an-app-key-of-some-length", "env:FICUS_TEST_R_APPSECRET": "app-secret"} {
		if v, err := r.Secret(ref); v != want || err != nil {
			t.Errorf("Secret(%s) = %q, %v; want %q", ref, v, err, want)
		}
	}
	if _, err := r.Secret("env:FICUS_TEST_R_OTHER"); err == nil {
		t.Error("a reference the configuration does not use resolves")
	}
	r, err = c.Resolve(ForStore)
	if err != nil || r.DSN != "postgres://db/ficus" || r.KEK != nil || r.RemoteIDPSecret != "" {
		t.Errorf("ForStore resolved %q %q %q (%v)", r.DSN, r.KEK, r.RemoteIDPSecret, err)
	}
}

// Issue 9: the defaults of keys whose zero value means "the default" are
// applied in one place.
func TestDerivedDefaults(t *testing.T) {
	t.Parallel()
	c := Defaults()
	if c.Issuer() != "http://127.0.0.1:8080" || c.JWTTTL() != 5*time.Minute || c.CacheTTL() != 0 {
		t.Errorf("defaults: %s %s %s", c.Issuer(), c.JWTTTL(), c.CacheTTL())
	}
	c.IDP.Issuer, c.IDP.JWTTTL, c.Gateway.RemoteIDP.Issuer = "https://login.example.com/", Duration(time.Minute), "https://idp.example.com"
	if c.Issuer() != "https://login.example.com" || c.JWTTTL() != time.Minute || c.CacheTTL() != 10*time.Second {
		t.Errorf("set: %s %s %s", c.Issuer(), c.JWTTTL(), c.CacheTTL())
	}
	c.Gateway.CacheTTL = Duration(3 * time.Second)
	if c.CacheTTL() != 3*time.Second {
		t.Errorf("cache_ttl set with a remote IDP: %s", c.CacheTTL())
	}
}

func TestCheckRules(t *testing.T) {
	t.Parallel()
	f := &routes.File{Name: "routes.yaml", Monolith: "legacy", Routes: []*routes.Route{
		{Name: "legacy-jwt", To: "legacy", Auth: &routes.Auth{Policy: "jwt"}},
		{Name: "orders-jwt", To: "orders", Auth: &routes.Auth{Policy: "jwt"}},
		{Name: "anon", To: "orders", Auth: &routes.Auth{Policy: "optional"}},
		{Name: "cart", To: "legacy", Shadow: &routes.Shadow{To: "orders"}},
		{Name: "bridged", To: "orders", Auth: &routes.Auth{Policy: "bridge", Bridge: "web"}},
	}}
	c := Defaults()
	c.Routes.File = "routes.yaml"
	if err := c.CheckRules(f); err != nil {
		t.Fatalf("with the IDP here: %v", err)
	}
	c.Gateway.RemoteIDP.Issuer = "https://idp.example.com"
	err := c.CheckRules(f)
	if err == nil || !strings.HasPrefix(err.Error(), "routes.yaml: every request on these routes would fail:") ||
		!strings.Contains(err.Error(), "route orders-jwt: policy jwt") || !strings.Contains(err.Error(), "route anon: policy optional") ||
		!strings.Contains(err.Error(), "route bridged: policy bridge needs the IDP in this process") || strings.Contains(err.Error(), "legacy-jwt") {
		t.Fatalf("with a remote IDP: %v", err)
	}
}
