// Package config is the process configuration of ficus: listeners, store,
// route file, limits, logging, the IDP, the gateway and the adapters.
//
// A command loads it in two steps, both run by Load, every problem of both
// reported at once with file:line: Validate checks the values and how they
// fit together without looking outside the configuration, and Resolve
// reads what it refers to (the secrets the command uses, the files it
// needs) and builds the adapters to find what they refuse. Secrets are
// never written into the file: they are references, env:NAME or
// file:PATH, resolved only by the commands that use them. The defaults
// are applied in one place, defaults.go.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/idp/federation"
	"github.com/ficus-gw/ficus/idp/legacy"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/ficus-gw/ficus/strangler/tlsconf"
	"go.yaml.in/yaml/v3"
)

// Config is the whole process configuration.
type Config struct {
	Listen Listen `yaml:"listen"`
	Store  Store  `yaml:"store"`
	Routes Routes `yaml:"routes"`
	Limits Limits `yaml:"limits"`
	// TrustedProxies are CIDRs of proxies in front of ficus whose
	// X-Forwarded-* headers are kept. Empty: ficus is the edge.
	TrustedProxies []string `yaml:"trusted_proxies" validate:"dive,cidr|ip"`
	// OwnedHeaders are extra headers (besides X-Ficus-*) that ficus sets
	// for upstreams; clients' copies are removed.
	OwnedHeaders []string `yaml:"owned_headers" validate:"dive,required"`
	// ShutdownTimeout bounds the wait for in-flight requests on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" validate:"gte=0"`
	Log             Log      `yaml:"log"`
	IDP             IDP      `yaml:"idp"`
	Gateway         Gateway  `yaml:"gateway"`
	// Webhooks declares the web-hook adapters; see docs/webhooks.md.
	Webhooks adapters.Webhooks `yaml:"webhooks"`
	// Mobile is the app-key adapter for early mobile apps; see docs/mobile.md.
	Mobile mobile.Config `yaml:"mobile"`
	// Sessions is the web session layer; see docs/web-sessions.md.
	Sessions Sessions `yaml:"sessions"`
	// Admin configures the admin API; see docs/operations.md.
	Admin Admin `yaml:"admin"`
	// Tracing exports OpenTelemetry spans; see docs/operations.md.
	Tracing Tracing `yaml:"tracing"`
	// Runtime tunes the Go runtime's garbage collector for ficus serve.
	Runtime Runtime `yaml:"runtime"`
}

// Runtime tunes the Go runtime's garbage collector. The environment's
// GOGC and GOMEMLIMIT, when set, win over these keys.
type Runtime struct {
	// GOGC is the collector's heap growth percent: a collection starts
	// when the heap has grown by this share of what the last one left
	// live. Default 300 (Go's is 100): a gateway's live heap is small and
	// its garbage is per-request, so Go's default collects dozens of times
	// a second under load. -1 turns the percent off (then set
	// memory_limit).
	GOGC int `yaml:"gogc" validate:"gte=-1"`
	// MemoryLimit is the runtime's soft memory limit: near it the
	// collector runs more often, whatever gogc says. Default none.
	MemoryLimit ByteSize `yaml:"memory_limit"`
}

// Admin configures the admin API (route revisions, web-hook inbox): where
// it is served and the scopes its callers' tokens need.
type Admin struct {
	// Listen, when set, serves the admin API on its own listener, and no
	// longer on listen.ops_addr. Empty: on listen.ops_addr.
	Listen string `yaml:"listen" validate:"omitempty,listenaddr"`
	// TLS serves that listener over HTTPS when both files are set.
	TLS TLS `yaml:"tls"`
	// Scope is the scope a token needs for every admin request. Default
	// ficus.admin.
	Scope string `yaml:"scope"`
	// ReadScope is enough for requests that only read (GET). Default
	// ficus.admin.read.
	ReadScope string `yaml:"read_scope"`
}

// Gateway configures the auth stage of the proxy.
type Gateway struct {
	// CacheTTL bounds how long a looked-up token is trusted without asking
	// the IDP again. Default 60s (10s with a remote IDP, which cannot send
	// revocation notices).
	CacheTTL Duration `yaml:"cache_ttl" validate:"gte=0"`
	// JWTAudience is the audience callers' JWTs carry on jwt routes.
	// Default ficus-gateway.
	JWTAudience string `yaml:"jwt_audience"`
	// RemoteIDP, when set, makes this gateway use an IDP in another process
	// instead of its own.
	RemoteIDP RemoteIDP `yaml:"remote_idp"`
	// Shadow sizes the copies of routes' shadow rules.
	Shadow ShadowCopies `yaml:"shadow"`
}

// ShadowCopies sizes the shadow copies: one queue and a fixed set of
// workers per process.
type ShadowCopies struct {
	// Queue is how many copies wait at most; a copy that finds it full is
	// dropped and counted. Default 1024.
	Queue int `yaml:"queue" validate:"gte=0,lte=1000000"`
	// Workers send the copies. Default 16.
	Workers int `yaml:"workers" validate:"gte=0,lte=10000"`
	// Memory bounds the answers held for comparison; a body that finds no
	// room is compared by its hash. Default 64MiB.
	Memory ByteSize `yaml:"memory" validate:"gte=0"`
	// Timeout bounds each copy (the shadow call, the second monolith call
	// and their bodies). Default 10s.
	Timeout Duration `yaml:"timeout" validate:"gte=0"`
}

// RemoteIDP is an IDP elsewhere and the gateway's client there.
type RemoteIDP struct {
	Issuer       string `yaml:"issuer" validate:"omitempty,httpurl"`
	ClientID     string `yaml:"client_id" validate:"required_with=Issuer"`
	ClientSecret Secret `yaml:"client_secret" validate:"required_with=Issuer"`
	// TLS is how the gateway calls an https issuer (introspection, token
	// exchange, its JWKS): a private CA bundle and a client certificate.
	// Empty: the system's roots, no client certificate.
	TLS ClientTLS `yaml:"tls"`
}

// IDP configures the built-in OAuth2 identity provider.
type IDP struct {
	// Enabled serves the IDP endpoints on the front door. Default true.
	Enabled *bool `yaml:"enabled"`
	// Issuer is the public base URL clients use. Default
	// http://<listen.addr>, which ficus serve refuses when it cannot be
	// right: listen.addr on every interface (0.0.0.0, ::) or on port 0,
	// or listen.tls set.
	Issuer string `yaml:"issuer" validate:"omitempty,httpurl"`
	// SigningAlg for new keys: EdDSA (default), RS256 or ES256.
	SigningAlg string `yaml:"signing_alg" validate:"omitempty,oneof=EdDSA RS256 ES256"`
	// KeyEncryptionKey seals private signing keys in the store: a secret
	// reference to 32 bytes, base64.
	KeyEncryptionKey Secret `yaml:"key_encryption_key"`
	// KeyPublishDelay: a rotated-in key is published this long before it
	// signs. Default 5m.
	KeyPublishDelay     Duration `yaml:"key_publish_delay" validate:"gte=0"`
	AccessTTL           Duration `yaml:"access_ttl" validate:"gte=0"`
	LoggedOnRefreshTTL  Duration `yaml:"logged_on_refresh_ttl" validate:"gte=0"`
	ReturningRefreshTTL Duration `yaml:"returning_refresh_ttl" validate:"gte=0"`
	ReturningRefreshCap Duration `yaml:"returning_refresh_cap" validate:"gte=0"`
	JWTTTL              Duration `yaml:"jwt_ttl" validate:"gte=0"`
	MaxFamiliesPerUser  int      `yaml:"max_tokens_per_user" validate:"gte=0"`
	SecretGrace         Duration `yaml:"secret_grace" validate:"gte=0"`
	// AllowPassword enables the password grant for first-party
	// confidential clients. Default false (RFC 9700).
	AllowPassword bool `yaml:"allow_password"`
	// ClientRate limits token-endpoint requests per client per second
	// (default 200, burst 2x); LoginPerMinute limits password attempts per
	// username and IP (default 10).
	ClientRate     float64 `yaml:"client_rate" validate:"gte=0"`
	LoginPerMinute float64 `yaml:"login_per_minute" validate:"gte=0"`
	// AuthFailuresPerMinute limits failed client authentications per
	// source address (through trusted_proxies). Default 20, burst the same.
	AuthFailuresPerMinute float64 `yaml:"auth_failures_per_minute" validate:"gte=0"`
	// HashMemory bounds the memory of concurrent argon2id runs (client
	// secret and password checks). Default 128MiB.
	HashMemory ByteSize `yaml:"hash_memory"`
	// HashWait is how long a check waits for room in HashMemory before a
	// 503. Default 2s.
	HashWait Duration `yaml:"hash_wait" validate:"gte=0"`
	// CleanupInterval runs the expired-token cleanup. Default 30s.
	CleanupInterval Duration `yaml:"cleanup_interval" validate:"gte=0"`
	// LegacyLogin, when http or postgres is set, checks the logins of
	// users who are not ficus users yet against the legacy monolith and
	// migrates them (lazy credential migration).
	LegacyLogin LegacyLogin `yaml:"legacy_login"`
	// OIDC tunes ficus as an OpenID Provider (docs/oidc.md).
	OIDC OIDCProvider `yaml:"oidc"`
	// Federation lists upstream OpenID Providers users may sign in with
	// (the login page and sessions' /auth/login); see docs/oidc.md.
	Federation federation.Config `yaml:"federation"`
}

// OIDCProvider tunes ficus as an OpenID Provider.
type OIDCProvider struct {
	// IDTokenTTL is the lifetime of ID tokens. Default 1h.
	IDTokenTTL Duration `yaml:"id_token_ttl" validate:"gte=0"`
	// PairwiseSecret keys the pairwise subject identifiers (clients with
	// subject type pairwise): a secret reference to at least 32 bytes,
	// base64. Changing it changes every pairwise subject. Unset: pairwise
	// clients cannot be registered.
	PairwiseSecret Secret `yaml:"pairwise_secret"`
}

// LegacyLogin is the legacy system that checks the passwords of users not
// yet migrated: exactly one of HTTP and Postgres. See
// docs/legacy-session-bridge.md.
type LegacyLogin struct {
	// MaxConcurrent bounds the legacy checks in flight. Default 8.
	MaxConcurrent int `yaml:"max_concurrent" validate:"gte=0,lte=1000"`
	// HTTP is the monolith's login endpoint.
	HTTP *legacy.HTTPConfig `yaml:"http"`
	// Postgres is a read-only query on the legacy database.
	Postgres *LegacyPostgres `yaml:"postgres"`
}

// LegacyPostgres is the legacy database and the query that finds a user.
type LegacyPostgres struct {
	// DSN is the legacy database's URL, as a secret reference.
	DSN              Secret   `yaml:"dsn" validate:"required"`
	Query            string   `yaml:"query"`
	HashFormats      []string `yaml:"hash_formats"`
	StatementTimeout Duration `yaml:"statement_timeout"`
	MaxConns         int32    `yaml:"max_conns"`
}

// SQL is the query's part of p, for package legacy.
func (p *LegacyPostgres) SQL() legacy.SQLConfig {
	return legacy.SQLConfig{Query: p.Query, HashFormats: p.HashFormats, StatementTimeout: p.StatementTimeout, MaxConns: p.MaxConns}
}

// Listen configures the two listeners.
type Listen struct {
	// Addr is the front door. Default 127.0.0.1:8080.
	Addr string `yaml:"addr" validate:"required,listenaddr"`
	// OpsAddr serves /healthz, /readyz, /metrics and the admin API; keep it
	// off the public network. Default 127.0.0.1:9090.
	OpsAddr string `yaml:"ops_addr" validate:"required,listenaddr"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" validate:"gte=0"`
	// IdleTimeout closes idle client keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout" validate:"gte=0"`
	// MaxHeaderBytes bounds request headers. Default 1 MiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// TLS serves the front door over HTTPS when both files are set, with
	// HTTP/2 offered by ALPN.
	TLS TLS `yaml:"tls"`
	// H2C serves HTTP/2 without TLS (prior knowledge) beside HTTP/1.1, for
	// a front door behind a proxy that speaks it; only without listen.tls.
	// Default false: a cleartext front door speaks HTTP/1.1 only.
	H2C bool `yaml:"h2c"`
	// HTTP2 bounds what one HTTP/2 client may ask of the front door.
	HTTP2 HTTP2 `yaml:"http2"`
	// OpsPprof serves Go's profiles (net/http/pprof) under /debug/pprof/
	// on the ops listener. Default false.
	OpsPprof bool `yaml:"ops_pprof"`
	// RedirectHTTP, when set, is a second listener (e.g. ":80") that
	// answers every request with a 308 to the same host, path and query
	// on https; only with listen.tls.
	RedirectHTTP string `yaml:"redirect_http" validate:"omitempty,listenaddr"`
}

// HTTP2 bounds the front door's HTTP/2 connections. The header list a
// client may send is bounded by listen.max_header_bytes, as for HTTP/1.1.
type HTTP2 struct {
	// MaxConcurrentStreams is how many requests one connection may have in
	// flight. Default 250.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams" validate:"gte=0,lte=10000"`
}

// TLS names a certificate and its key, reloaded when the files change,
// and the listener's TLS policy.
type TLS struct {
	CertFile string `yaml:"cert_file" validate:"required_with=KeyFile"`
	KeyFile  string `yaml:"key_file" validate:"required_with=CertFile"`
	// MinVersion is the oldest TLS version served: 1.2 (the default) or
	// 1.3.
	MinVersion string `yaml:"min_version"`
	// CipherSuites are the TLS 1.2 cipher suites, by Go's names, from the
	// ECDHE AEAD suites. Empty: Go's defaults. TLS 1.3 suites are not
	// configurable.
	CipherSuites []string `yaml:"cipher_suites"`
}

// Policy is the listener's TLS policy.
func (t TLS) Policy() tlsconf.Policy {
	return tlsconf.Policy{MinVersion: t.MinVersion, CipherSuites: t.CipherSuites}
}

// ClientTLS is the TLS of calls ficus makes to a server: the CAs it
// trusts and the certificate it presents.
type ClientTLS struct {
	// CAFile is a PEM bundle of the CAs trusted in place of the system's
	// roots. Empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate presented when the
	// server asks for one (mTLS), read again when the files change.
	CertFile string `yaml:"cert_file" validate:"required_with=KeyFile"`
	KeyFile  string `yaml:"key_file" validate:"required_with=CertFile"`
}

// Client is the tlsconf form of c.
func (c ClientTLS) Client() tlsconf.Client {
	return tlsconf.Client{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile}
}

// Store selects where state lives.
type Store struct {
	// Driver is memory (the default: keeps nothing across restarts) or
	// postgres.
	Driver string `yaml:"driver" validate:"oneof=memory postgres"`
	// DSN is the PostgreSQL URL, as a secret reference (env:NAME or
	// file:PATH). Required for postgres.
	DSN Secret `yaml:"dsn" validate:"required_if=Driver postgres"`
	// MaxConns bounds the pool. Default 16.
	MaxConns int32 `yaml:"max_conns" validate:"gte=1,lte=1000"`
	// GroupCommit shares one commit among concurrent writes of the
	// web-hook inbox and the IDP's tokens (postgres only).
	GroupCommit GroupCommit `yaml:"group_commit"`
}

// GroupCommit tunes the group commit of the write paths.
type GroupCommit struct {
	// MaxBatch bounds the writes of one commit. Default 64; 1 turns
	// grouping off.
	MaxBatch int `yaml:"max_batch" validate:"gte=0,lte=1000"`
	// MaxWait bounds how long a batch waits for more writes while another
	// batch commits: it goes when that commit ends, after MaxWait at most
	// (never waits when none commits). Default 1ms.
	MaxWait Duration `yaml:"max_wait" validate:"gte=0,lte=100000000"`
	// Flushers is how many batches of one kind may commit at once, each
	// on a connection of the pool. Default 2.
	Flushers int `yaml:"flushers" validate:"gte=0,lte=64"`
}

// Options returns the settings for strangler/groupcommit.
func (g GroupCommit) Options() groupcommit.Options {
	return groupcommit.Options{MaxBatch: g.MaxBatch, MaxWait: g.MaxWait.Std(0), Flushers: g.Flushers}
}

// Routes says where the route rules come from.
type Routes struct {
	// Source is file (the default: routes.file, on each instance) or
	// postgres (the numbered revisions of the rule store, applied with
	// ficus routes apply and followed by every instance; needs
	// store.driver postgres).
	Source string `yaml:"source" validate:"omitempty,oneof=file postgres"`
	// File is the route rule file; ficus serve needs it with source file
	// (other commands do not read it).
	File string `yaml:"file"`
	// Watch reloads the file when it changes. Default true. SIGHUP always
	// reloads.
	Watch *bool `yaml:"watch"`
	// PollInterval is how often an instance on source postgres reads the
	// live revision number, beside the notices, and records its heartbeat.
	// Default 5s.
	PollInterval Duration `yaml:"poll_interval" validate:"gte=0"`
}

// Limits protect ficus and its upstreams.
type Limits struct {
	// MaxRequestBody refuses larger bodies with 413. Default 0: no limit
	// (bodies are streamed).
	MaxRequestBody ByteSize `yaml:"max_request_body"`
}

// Log configures logging (JSON to standard error; the access log to
// standard output).
type Log struct {
	Level     string `yaml:"level" validate:"omitempty,oneof=debug info warn error"`
	Format    string `yaml:"format" validate:"omitempty,oneof=json text"`
	AccessLog *bool  `yaml:"access_log"`
}

// TrustedPrefixes parses TrustedProxies.
func (c *Config) TrustedPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Secret is a reference to a secret value: env:NAME or file:PATH. A
// literal value is refused, so a secret never sits in the config file.
type Secret string

// UnmarshalYAML accepts only references. The value is never echoed.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var v string
	if err := n.Decode(&v); err != nil {
		return err
	}
	if v != "" && !isReference(v) {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, errLiteralSecret)}}
	}
	*s = Secret(v)
	return nil
}

const errLiteralSecret = "secrets are not written into the config file: use env:NAME or file:PATH"

func isReference(v string) bool {
	return strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:")
}

// Resolve reads the secret from the environment or the file (trailing
// newlines trimmed).
func (s Secret) Resolve() (string, error) {
	switch {
	case strings.HasPrefix(string(s), "env:"):
		name := strings.TrimPrefix(string(s), "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	case strings.HasPrefix(string(s), "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(string(s), "file:"))
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", errors.New("not a secret reference (env:NAME or file:PATH)")
}

// String never shows the secret, only where it comes from.
func (s Secret) String() string { return string(s) }

// Duration is a time.Duration written as "30s" (the same type route files
// use).
type Duration = routes.Duration

// ByteSize is a size written as 1048576, "512KiB", "10MiB" or "1MB" (the
// same type web-hook adapters use).
type ByteSize = routes.ByteSize

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return "."
}

func relTo(dir, p string) string {
	if p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	return dir + "/" + p
}
