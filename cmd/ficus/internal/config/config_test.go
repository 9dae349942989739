package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/strangler/tlsconf/tlstest"
)

func load(t *testing.T, text string, p Purpose) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "routes.yaml"), []byte("x"), 0o600)
	path := filepath.Join(dir, "ficus.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(path, p)
	return c, err
}

// Issue 8 item 16: sizes are written as people write them.
func TestByteSizes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		given string
		want  ByteSize
	}{
		{"1048576", 1 << 20}, {"512KiB", 512 << 10}, {"512 KiB", 512 << 10}, {"10MiB", 10 << 20},
		{"1GiB", 1 << 30}, {"512KB", 512000}, {"1MB", 1000000}, {"0", 0}, {"100B", 100},
	} {
		t.Run(tc.given, func(t *testing.T) {
			_, err := load(t, "limits: {max_request_body: "+tc.given+"}\nwebhooks: {adapters: [{max_body: "+tc.given+"}]}\n", ForCheck)
			if err == nil {
				t.Fatal("the adapter without name is accepted")
			}
			if strings.Contains(err.Error(), "size") {
				t.Fatalf("%s refused: %v", tc.given, err)
			}
			c, err := load(t, "limits: {max_request_body: "+tc.given+"}\n", ForCheck)
			if err != nil || c.Limits.MaxRequestBody != tc.want {
				t.Fatalf("%s = %d, %v; want %d", tc.given, c.Limits.MaxRequestBody, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"-1", "lots", "1.5.5MiB", "1e3", "99999999999999999999"} {
		_, err := load(t, "limits: {max_request_body: "+bad+"}\n", ForCheck)
		if err == nil || !strings.Contains(err.Error(), ":1: limits.max_request_body: invalid size") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// Issue 8 item 16: messages speak of keys and values, never of Go types,
// and a near miss of a key is named.
func TestTypeErrorsInWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ given, want string }{
		{"listen: {max_header_bytes: [1]}", ":1: listen.max_header_bytes: must be a size such as 1048576, 512KiB or 10MiB, not a list"},
		{"store: {max_conns: many}", `:1: store.max_conns: must be a whole number, not "many"`},
		{"idp: {client_rate: fast}", `:1: idp.client_rate: must be a number, not "fast"`},
		{"routes: {watch: sometimes}", `:1: routes.watch: must be true or false, not "sometimes"`},
		{"webhooks: {dedupe_window: 31 days}", `:1: webhooks.dedupe_window: must be a duration such as 30s, 5m or 1h30m, not "31 days"`},
		{"webhooks: {adapters: {name: x}}", `:1: webhooks.adapters: must be a list, not a mapping`},
		{"trusted_proxies: 10.0.0.0/8", `:1: trusted_proxies: must be a list, not "10.0.0.0/8"`},
		{"listen:\n  addr: a\n  addr: b\n", ":3: listen.addr: is set twice (first on line 2)"},
		{"lisen: {}", ":1: lisen: unknown field (did you mean listen?)"},
		{"webhooks: {adapters: [{answer: {contenttype: x}}]}", ":1: webhooks.adapters[0].answer.contenttype: unknown field (did you mean content_type?)"},
		{"mobile: {apps: [{name: a, perkeyrate: 1}]}", ":1: mobile.apps[0].perkeyrate: unknown field (did you mean per_key_rate?)"},
		{"gateway: {remote_idp: {isuer: x}}", ":1: gateway.remote_idp.isuer: unknown field (did you mean issuer?)"},
		{"gateway: {remote_idp: {url: x}}", ":1: gateway.remote_idp.url: unknown field; known here: issuer, client_id, client_secret"},
		{"store: {dsn: postgres://u:hunter2@db/x}", ":1: store.dsn: secrets are not written into the config file"},
		{"listen: {addr: [", ":1: not valid YAML"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := load(t, tc.given, ForCheck)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
			// Only the message after the file's path: the test's temporary
			// directory carries random digits ("…_int3278370505" once).
			msg := err.Error()
			if i := strings.Index(msg, "ficus.yaml"); i >= 0 {
				msg = msg[i:]
			}
			for _, goName := range []string{"unmarshal", "!!", "in type", "config.", "adapters.", "mobile.App", "int32", "float64", "[]string", "hunter2"} {
				if strings.Contains(msg, goName) {
					t.Errorf("%q in %v", goName, err)
				}
			}
		})
	}
}

// Issue 8 item 16: each purpose resolves only the secrets it needs; the
// others are checked for form only.
func TestPurposeResolvesOnlyItsSecrets(t *testing.T) {
	t.Setenv("FICUS_TEST_DSN", "postgres://localhost/x")
	text := `store: {driver: postgres, dsn: env:FICUS_TEST_DSN}
idp: {key_encryption_key: env:FICUS_TEST_UNSET_KEK}
gateway: {remote_idp: {issuer: "https://login.example.com", client_id: gw, client_secret: env:FICUS_TEST_UNSET_GW}}
webhooks:
  adapters:
    - {name: s, path: /s, target: /t, client_id: c, client_secret: env:FICUS_TEST_UNSET_A, schemes: [{type: stripe, secrets: [file:/nonexistent/whsec]}]}
mobile: {apps: [{name: ios, key: env:FICUS_TEST_UNSET_KEY, client_id: c, client_secret: env:FICUS_TEST_UNSET_MS}]}
`
	for _, p := range []Purpose{ForCheck, ForStore} {
		if _, err := load(t, text, p); err != nil {
			t.Fatalf("purpose %d: %v", p, err)
		}
	}
	_, err := load(t, text, ForIDP)
	if err == nil || !strings.Contains(err.Error(), "idp.key_encryption_key: environment variable FICUS_TEST_UNSET_KEK is not set") || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("ForIDP: %v", err)
	}
	_, err = load(t, text, ForServe)
	for _, want := range []string{"FICUS_TEST_UNSET_KEK", "FICUS_TEST_UNSET_GW", "FICUS_TEST_UNSET_A", "/nonexistent/whsec", "FICUS_TEST_UNSET_KEY", "routes.file: is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ForServe does not name %s: %v", want, err)
		}
	}
	t.Setenv("FICUS_TEST_UNSET_KEK", "c2hvcnQ=")
	if _, err := load(t, text, ForIDP); err == nil || !strings.Contains(err.Error(), "must be 32 bytes, base64") {
		t.Fatalf("short key: %v", err)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("%T is not Errors", err)
	}
}

// Issue 8 item 12: the default issuer, http://<listen.addr>, is refused by
// serve when clients cannot use it; the message names idp.issuer.
func TestDefaultIssuer(t *testing.T) {
	t.Parallel()
	base := "routes: {file: routes.yaml}\n"
	pair := tlstest.NewCA(t, "issuer").Server(t, "", "front", "login.example.com")
	for _, tc := range []struct{ listen, want string }{
		{`{addr: "0.0.0.0:8080"}`, "names every interface"},
		{`{addr: "[::]:8080"}`, "names every interface"},
		{`{addr: ":8080"}`, "names every interface"},
		{`{addr: "127.0.0.1:0"}`, "has port 0"},
		{fmt.Sprintf(`{tls: {cert_file: %s, key_file: %s}}`, pair.CertFile, pair.KeyFile), "plain http while listen.tls serves https"},
	} {
		_, err := load(t, base+"listen: "+tc.listen+"\n", ForServe)
		if err == nil || !strings.Contains(err.Error(), "idp.issuer: is required: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.listen, err)
		}
		if _, err := load(t, base+"listen: "+tc.listen+"\nidp: {issuer: \"https://login.example.com\"}\n", ForServe); err != nil {
			t.Errorf("%s with an issuer: %v", tc.listen, err)
		}
		if _, err := load(t, base+"listen: "+tc.listen+"\nidp: {enabled: false}\n", ForServe); err != nil {
			t.Errorf("%s without the IDP: %v", tc.listen, err)
		}
		if _, err := load(t, base+"listen: "+tc.listen+"\n", ForIDP); err != nil {
			t.Errorf("%s for the idp commands: %v", tc.listen, err)
		}
	}
	if _, err := load(t, base+"listen: {addr: \"127.0.0.1:8080\"}\n", ForServe); err != nil {
		t.Errorf("a loopback address with a port: %v", err)
	}
	for _, bad := range []string{"login.example.com", "ftp://login.example.com", "https://login.example.com/?x=1", "https://u:p@login.example.com"} {
		if _, err := load(t, base+"idp: {issuer: \""+bad+"\"}\n", ForServe); err == nil || !strings.Contains(err.Error(), "idp.issuer: must be an http:// or https:// URL") {
			t.Errorf("issuer %s: %v", bad, err)
		}
	}
	// Found by the issue-8 attack run: written out, the addresses the
	// default is refused for were accepted.
	for _, bad := range []string{"http://0.0.0.0:8080", "http://[::]:8080", "https://login.example.com:0", "http://0.0.0.0"} {
		if _, err := load(t, base+"idp: {issuer: \""+bad+"\"}\n", ForServe); err == nil || !strings.Contains(err.Error(), "idp.issuer: names no address clients can use") {
			t.Errorf("issuer %s: %v", bad, err)
		}
	}
}

// Found by the issue-8 attack run: invalid mobile.paths were reported only
// after the file was accepted, alone, without a line; and two apps with
// one key were accepted (one of them silently never matched).
func TestMobileProblemsReportedWithTheRest(t *testing.T) {
	text := "log: {level: loud}\nmobile:\n  paths: [no-slash, /m/../x, /a%2fb]\n  apps: [{name: ios}, {name: ios}]\n"
	_, err := load(t, text, ForCheck)
	for _, want := range []string{":1: log.level", ":4: mobile.apps[1].name: ios is used by another app", ":3: mobile.paths: prefix \"no-slash\" must start with /", ":3: mobile.paths: prefix \"/m/../x\" has a dot segment", "a%2fb"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}

	t.Setenv("FICUS_TEST_KEY", "0123456789abcdef")
	t.Setenv("FICUS_TEST_SHORT", "short")
	t.Setenv("FICUS_TEST_CS", "s")
	text = `routes: {file: routes.yaml}
mobile:
  apps:
    - {name: a, key: env:FICUS_TEST_KEY, client_id: a, client_secret: env:FICUS_TEST_CS}
    - {name: b, key: env:FICUS_TEST_KEY, client_id: b, client_secret: env:FICUS_TEST_CS, disabled: true}
    - {name: c, key: env:FICUS_TEST_SHORT, client_id: c, client_secret: env:FICUS_TEST_CS}
    - {name: d, key: env:FICUS_TEST_KEY2, client_id: "", client_secret: env:FICUS_TEST_CS}
`
	_, err = load(t, text, ForServe)
	for _, want := range []string{`:5: mobile.apps[1]: mobile app "b": key: the same key as app "a"`,
		`:6: mobile.apps[2]: mobile app "c": key: must resolve to at least 16 characters`,
		`:7: mobile.apps[3]: mobile app "d": key: environment variable FICUS_TEST_KEY2 is not set`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "<nil>") {
		t.Errorf("a Go nil in %v", err)
	}
}

func TestValidationMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ given, want string }{
		{"listen: {tls: {key_file: x}}", ":1: listen.tls.cert_file: is required when listen.tls.key_file is set"},
		{"store: {driver: postgres}", ":1: store.dsn: is required when store.driver is postgres"},
		{"store: {max_conns: 0}", ":1: store.max_conns: must be at least 1 (got 0)"},
		{"shutdown_timeout: -1s", ":1: shutdown_timeout: must not be negative (got -1s)"},
		{"log: {level: loud}", `:1: log.level: must be one of debug, info, warn, error (got "loud")`},
		{"webhooks: {adapters: [{name: a, path: /a, target: /t, client_id: c, client_secret: env:X, schemes: [{type: basic, users: {u: env:Y}}], bad_signature_status: 200, answer: {status: 500}}]}",
			":1: webhooks.adapters[0].bad_signature_status: must be at least 400 (got 200)"},
		{"webhooks: {adapters: [{name: a, path: /a, target: /t, client_id: c, client_secret: env:X, schemes: [{type: basic, users: {u: env:Y}}], answer: {status: 500}}]}",
			":1: webhooks.adapters[0].answer.status: must be at most 299 (got 500)"},
		{"mobile: {apps: [{name: a, per_device_rate: -1}]}", ":1: mobile.apps[0].per_device_rate: must not be negative"},
		// Found by the issue-8 attack run: a negative hash_wait was accepted.
		{"idp: {hash_wait: -1s}", ":1: idp.hash_wait: must not be negative (got -1s)"},
		{"gateway: {shadow: {queue: -1}}", ":1: gateway.shadow.queue: must not be negative"},
		{"gateway: {shadow: {timeout: -1s}}", ":1: gateway.shadow.timeout: must not be negative (got -1s)"},
	} {
		t.Run(tc.given, func(t *testing.T) {
			_, err := load(t, tc.given, ForCheck)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestTypeAt(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"listen.addr":                           "string",
		"webhooks.adapters[0].max_body":         "routes.ByteSize",
		"webhooks.adapters[].schemes[].secrets": "[]string",
		"webhooks.adapters[].answer.status":     "int",
		"webhooks.delivery.workers":             "int",
		"mobile.apps[3].per_key_rate":           "float64",
		"webhooks.adapters[].schemes[].users.x": "string",
	} {
		if got := typeAt(path); got == nil || got.String() != want {
			t.Errorf("%s: %v, want %s", path, got, want)
		}
	}
	if typeAt("listen.nope") != nil {
		t.Error("an unknown key has a type")
	}
}

// Issue 9: web-hook paths are normalised at load, as the front door
// matches them; one that cannot be is refused, and two spellings of one
// path are one path.
func TestWebhookPathsNormalisedAtLoad(t *testing.T) {
	t.Parallel()
	adapter := func(name, path string) string {
		return "{name: " + name + ", path: '" + path + "', target: /t, client_id: c, client_secret: env:X, schemes: [{type: basic, users: {u: env:Y}}], event_id: {header: X-Id}}"
	}
	c, err := load(t, "webhooks: {adapters: ["+adapter("a", "/hooks//stripe/./x/../")+"]}\n", ForCheck)
	if err != nil || c.Webhooks.Adapters[0].Path != "/hooks/stripe/" {
		t.Fatalf("loaded %v: %v", c, err)
	}
	_, err = load(t, "webhooks: {adapters: ["+adapter("a", "/hooks/a%2fb")+"]}\n", ForCheck)
	if err == nil || !strings.Contains(err.Error(), ":1: webhooks.adapters[0].path: path has an encoded slash") {
		t.Fatalf("encoded slash: %v", err)
	}
	_, err = load(t, "webhooks: {adapters: ["+adapter("a", "/hooks/a")+", "+adapter("b", "/hooks//a")+"]}\n", ForCheck)
	if err == nil || !strings.Contains(err.Error(), "webhooks.adapters[1].path: /hooks/a is used by another adapter") {
		t.Fatalf("one path twice: %v", err)
	}
}

// Issue 11: routes.source postgres is checked with the rest, each
// problem with its line.
func TestRoutesSource(t *testing.T) {
	t.Parallel()
	dsn := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(dsn, []byte("postgres://127.0.0.1/x"), 0o600)
	pg := "store: {driver: postgres, dsn: file:" + dsn + "}\n"
	for _, tc := range []struct{ name, given, want string }{
		{"memory store", "routes:\n  source: postgres\n", ":2: routes.source: postgres needs store.driver: postgres"},
		{"a file as well", pg + "routes:\n  source: postgres\n  file: routes.yaml\n", ":4: routes.file: is not read with routes.source postgres"},
		{"watch", pg + "routes:\n  source: postgres\n  watch: true\n", ":4: routes.watch: is for routes.source file"},
		{"poll with a file", "routes:\n  file: routes.yaml\n  poll_interval: 1s\n", ":3: routes.poll_interval: is for routes.source postgres"},
		{"unknown source", "routes: {source: etcd}\n", ":1: routes.source: must be one of file, postgres"},
		{"negative poll", pg + "routes: {source: postgres, poll_interval: -1s}\n", "routes.poll_interval: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.given, ForServe)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	// No route file is needed with the store.
	c, err := load(t, pg+"routes: {source: postgres, poll_interval: 2s}\nidp: {issuer: \"http://ficus.test\"}\n", ForServe)
	if err != nil || !c.RoutesFromStore() || c.WatchRoutes() {
		t.Fatalf("postgres source: %v", err)
	}
}

// Issue 11: the admin API's keys are checked with the rest.
func TestAdminKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, given, want string }{
		{"bad address", "admin:\n  listen: nowhere\n", ":2: admin.listen: must be host:port"},
		{"the ops listener", "listen: {ops_addr: \"127.0.0.1:9191\"}\nadmin:\n  listen: 127.0.0.1:9191\n", ":3: admin.listen: must differ from listen.addr and listen.ops_addr"},
		{"TLS without a listener", "admin:\n  tls: {cert_file: a.crt, key_file: a.key}\n", ":2: admin.tls: is for admin.listen"},
		{"half the TLS pair", "admin:\n  listen: 127.0.0.1:9443\n  tls: {cert_file: a.crt}\n", "admin.tls.key_file: is required when admin.tls.cert_file is set"},
		{"two scopes", "admin:\n  scope: ficus.admin other\n", `:2: admin.scope: must be one scope: printable ASCII without spaces, quotes or backslashes (got "ficus.admin other")`},
		{"a quote", "admin:\n  read_scope: 'a\"b'\n", `:2: admin.read_scope: must be one scope`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.given, ForCheck)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	c, err := load(t, "admin: {listen: \"127.0.0.1:0\", scope: release.manage}\n", ForCheck)
	if err != nil || c.Admin.Listen != "127.0.0.1:0" || c.Admin.Scope != "release.manage" {
		t.Fatalf("%v %+v", err, c)
	}
}

// Issue 14: the TLS keys of the listeners and of the remote IDP are
// checked with the rest, each problem at its line.
func TestTLSKeys(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "keys")
	pair := ca.Server(t, "", "front", "login.example.com")
	tlsOn := fmt.Sprintf("cert_file: %s, key_file: %s", pair.CertFile, pair.KeyFile)
	base := "routes: {file: routes.yaml}\nidp: {issuer: \"https://login.example.com\"}\n"
	for _, tc := range []struct{ name, given, want string }{
		{"a good policy", "listen: {tls: {" + tlsOn + ", min_version: \"1.3\", cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]}, h2c: false, redirect_http: \":8081\", http2: {max_concurrent_streams: 100}}\n", ""},
		{"TLS 1.1", "listen: {tls: {" + tlsOn + ", min_version: \"1.1\"}}\n", "ficus.yaml:3: listen.tls.min_version: TLS 1.1 is not allowed"},
		{"an insecure suite", "listen: {tls: {" + tlsOn + ", cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_RC4_128_SHA]}}\n", "listen.tls.cipher_suites[1]: TLS_RSA_WITH_RC4_128_SHA is insecure"},
		{"a policy without a certificate", "admin: {listen: \"127.0.0.1:9443\", tls: {min_version: \"1.3\"}}\n", "admin.tls: min_version and cipher_suites are for a listener with cert_file and key_file"},
		{"h2c over TLS", "listen: {tls: {" + tlsOn + "}, h2c: true}\n", "listen.h2c: is for a front door without listen.tls"},
		{"a redirect without TLS", "listen: {redirect_http: \":8081\"}\n", "listen.redirect_http: redirects to https: it needs listen.tls"},
		{"a redirect on the front door", "listen: {addr: \"127.0.0.1:8443\", tls: {" + tlsOn + "}, redirect_http: \"127.0.0.1:8443\"}\n", "listen.redirect_http: must differ"},
		{"too many streams", "listen: {http2: {max_concurrent_streams: 100000}}\n", "listen.http2.max_concurrent_streams: must be at most 10000"},
		{"remote IDP TLS on http", "gateway: {remote_idp: {issuer: \"http://idp.internal\", client_id: gw, client_secret: env:X, tls: {ca_file: " + ca.File + "}}}\n", "gateway.remote_idp.tls: is for an https:// issuer"},
		{"remote IDP bundle that is no bundle", "gateway: {remote_idp: {issuer: \"https://idp.internal\", client_id: gw, client_secret: env:PATH, tls: {ca_file: " + pair.KeyFile + "}}}\n", "gateway.remote_idp.tls.ca_file: " + pair.KeyFile + ": no PEM certificate"},
		{"a broken front pair", "listen: {tls: {cert_file: " + pair.CertFile + ", key_file: " + ca.Server(t, "", "other", "x").KeyFile + "}}\n", "listen.tls.cert_file: tls: private key does not match public key"},
	} {
		_, err := load(t, base+tc.given, ForServe)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Issue 15: the collector's keys have a default, are checked, and the
// percent turned off needs a limit.
func TestRuntimeKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, given, want string }{
		{"below -1", "runtime: {gogc: -5}\n", ":1: runtime.gogc:"},
		{"off without a limit", "runtime: {gogc: -1}\n", "runtime.gogc: -1 (no collection by growth) needs runtime.memory_limit"},
		{"not a size", "runtime: {memory_limit: lots}\n", "runtime.memory_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.given, ForCheck)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	c, err := load(t, "listen: {ops_pprof: true}\n", ForCheck)
	if err != nil || c.GOGC() != DefaultGOGC || c.Runtime.MemoryLimit != 0 || !c.Listen.OpsPprof {
		t.Fatalf("defaults: %v %+v", err, c.Runtime)
	}
	c, err = load(t, "runtime: {gogc: -1, memory_limit: 48MiB}\n", ForCheck)
	if err != nil || c.GOGC() != -1 || c.Runtime.MemoryLimit != 48<<20 {
		t.Fatalf("set: %v %+v", err, c.Runtime)
	}
}
