// Package config is the process configuration of `ficus serve`: listeners,
// store, route file, limits and logging. It is validated as a whole at start
// and secrets are never written into it: they are references, env:NAME or
// file:PATH, resolved when the process starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"

	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/mobile"
	"github.com/ficus-gw/ficus/routes"
	"github.com/go-playground/validator/v10"
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
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	Log             Log      `yaml:"log"`
	IDP             IDP      `yaml:"idp"`
	Gateway         Gateway  `yaml:"gateway"`
	// Webhooks declares the web-hook adapters; see docs/webhooks.md.
	Webhooks adapters.Webhooks `yaml:"webhooks"`
	// Mobile is the app-key adapter for early mobile apps; see docs/mobile.md.
	Mobile mobile.Config `yaml:"mobile"`
}

// Gateway configures the auth stage of the proxy.
type Gateway struct {
	// CacheTTL bounds how long a looked-up token is trusted without asking
	// the IDP again. Default 60s (10s with a remote IDP, which cannot send
	// revocation notices).
	CacheTTL Duration `yaml:"cache_ttl"`
	// JWTAudience is the audience callers' JWTs carry on jwt routes.
	// Default ficus-gateway.
	JWTAudience string `yaml:"jwt_audience"`
	// RemoteIDP, when set, makes this gateway use an IDP in another process
	// instead of its own.
	RemoteIDP RemoteIDP `yaml:"remote_idp"`
}

// RemoteIDP is an IDP elsewhere and the gateway's client there.
type RemoteIDP struct {
	Issuer       string `yaml:"issuer" validate:"omitempty,url"`
	ClientID     string `yaml:"client_id" validate:"required_with=Issuer"`
	ClientSecret Secret `yaml:"client_secret" validate:"required_with=Issuer"`
}

// IDP configures the built-in OAuth2 identity provider.
type IDP struct {
	// Enabled serves the IDP endpoints on the front door. Default true.
	Enabled *bool `yaml:"enabled"`
	// Issuer is the public base URL. Default http://<listen.addr>.
	Issuer string `yaml:"issuer" validate:"omitempty,url"`
	// SigningAlg for new keys: EdDSA (default), RS256 or ES256.
	SigningAlg string `yaml:"signing_alg" validate:"omitempty,oneof=EdDSA RS256 ES256"`
	// KeyEncryptionKey seals private signing keys in the store: a secret
	// reference to 32 bytes, base64.
	KeyEncryptionKey Secret `yaml:"key_encryption_key"`
	// KeyPublishDelay: a rotated-in key is published this long before it
	// signs. Default 5m.
	KeyPublishDelay     Duration `yaml:"key_publish_delay"`
	AccessTTL           Duration `yaml:"access_ttl"`
	LoggedOnRefreshTTL  Duration `yaml:"logged_on_refresh_ttl"`
	ReturningRefreshTTL Duration `yaml:"returning_refresh_ttl"`
	ReturningRefreshCap Duration `yaml:"returning_refresh_cap"`
	JWTTTL              Duration `yaml:"jwt_ttl"`
	MaxFamiliesPerUser  int      `yaml:"max_tokens_per_user" validate:"gte=0"`
	SecretGrace         Duration `yaml:"secret_grace"`
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
	HashWait Duration `yaml:"hash_wait"`
	// CleanupInterval runs the expired-token cleanup. Default 30s.
	CleanupInterval Duration `yaml:"cleanup_interval"`
}

// IDPEnabled reports whether the IDP is served.
func (c *Config) IDPEnabled() bool { return c.IDP.Enabled == nil || *c.IDP.Enabled }

// Listen configures the two listeners.
type Listen struct {
	// Addr is the front door. Default 127.0.0.1:8080.
	Addr string `yaml:"addr" validate:"required,listenaddr"`
	// OpsAddr serves /healthz, /readyz, /metrics and the admin API; keep it
	// off the public network. Default 127.0.0.1:9090.
	OpsAddr string `yaml:"ops_addr" validate:"required,listenaddr"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle client keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds request headers. Default 1 MiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// TLS serves the front door over HTTPS when both files are set.
	TLS TLS `yaml:"tls"`
}

// TLS names a certificate and its key.
type TLS struct {
	CertFile string `yaml:"cert_file" validate:"required_with=KeyFile"`
	KeyFile  string `yaml:"key_file" validate:"required_with=CertFile"`
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
	MaxConns int32 `yaml:"max_conns" validate:"gte=0,lte=1000"`
}

// Routes names the rule file.
type Routes struct {
	File string `yaml:"file" validate:"required"`
	// Watch reloads the file when it changes. Default true. SIGHUP always
	// reloads.
	Watch *bool `yaml:"watch"`
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

// Defaults returns the configuration used where a file says nothing.
func Defaults() Config {
	return Config{
		Listen: Listen{
			Addr: "127.0.0.1:8080", OpsAddr: "127.0.0.1:9090",
			ReadHeaderTimeout: Duration(10 * time.Second), IdleTimeout: Duration(120 * time.Second),
			MaxHeaderBytes: 1 << 20,
		},
		Store:           Store{Driver: "memory", MaxConns: 16},
		ShutdownTimeout: Duration(30 * time.Second),
		Log:             Log{Level: "info", Format: "json"},
	}
}

// Load reads and validates a configuration file. Relative paths in it
// (the route file, TLS files) are relative to the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := dirOf(path)
	c.Routes.File = relTo(dir, c.Routes.File)
	c.Listen.TLS.CertFile = relTo(dir, c.Listen.TLS.CertFile)
	c.Listen.TLS.KeyFile = relTo(dir, c.Listen.TLS.KeyFile)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Validate checks the whole configuration and reports every problem.
func (c *Config) Validate() error {
	var errs []string
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		return name
	})
	_ = v.RegisterValidation("listenaddr", func(fl validator.FieldLevel) bool {
		_, port, err := net.SplitHostPort(fl.Field().String())
		if err != nil {
			return false
		}
		n, err := strconv.Atoi(port)
		return err == nil && n >= 0 && n <= 65535
	})
	if err := v.Struct(c); err != nil {
		var ves validator.ValidationErrors
		if errors.As(err, &ves) {
			for _, fe := range ves {
				_, field, _ := strings.Cut(fe.Namespace(), ".")
				errs = append(errs, fmt.Sprintf("%s: %s", field, reason(fe)))
			}
		} else {
			errs = append(errs, err.Error())
		}
	}
	if c.Store.Driver == "postgres" && c.Store.DSN != "" {
		if _, err := c.Store.DSN.Resolve(); err != nil {
			errs = append(errs, "store.dsn: "+err.Error())
		}
	}
	if c.IDP.KeyEncryptionKey != "" {
		if _, err := c.IDP.KeyEncryptionKey.Resolve(); err != nil {
			errs = append(errs, "idp.key_encryption_key: "+err.Error())
		}
	}
	if c.Gateway.RemoteIDP.ClientSecret != "" {
		if _, err := c.Gateway.RemoteIDP.ClientSecret.Resolve(); err != nil {
			errs = append(errs, "gateway.remote_idp.client_secret: "+err.Error())
		}
	}
	paths := map[string]bool{}
	for _, a := range c.Webhooks.Adapters {
		if _, err := a.Build(func(ref string) (string, error) { return Secret(ref).Resolve() }, nil); err != nil {
			errs = append(errs, "webhooks: "+err.Error())
		}
		if paths[a.Path] {
			errs = append(errs, fmt.Sprintf("webhooks: path %s is used twice", a.Path))
		}
		paths[a.Path] = true
	}
	if len(c.Mobile.Apps) > 0 {
		if _, err := mobile.New(c.Mobile, func(ref string) (string, error) { return Secret(ref).Resolve() }, "", nil); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if c.Routes.File != "" {
		if _, err := os.Stat(c.Routes.File); err != nil {
			errs = append(errs, "routes.file: "+err.Error())
		}
	}
	for _, f := range []string{c.Listen.TLS.CertFile, c.Listen.TLS.KeyFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				errs = append(errs, "listen.tls: "+err.Error())
			}
		}
	}
	if c.Listen.Addr == c.Listen.OpsAddr && !strings.HasSuffix(c.Listen.Addr, ":0") {
		errs = append(errs, "listen.ops_addr: must differ from listen.addr")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func reason(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required", "required_if", "required_with":
		return "is required"
	case "oneof":
		return fmt.Sprintf("must be one of %s (got %q)", strings.ReplaceAll(fe.Param(), " ", ", "), fmt.Sprint(fe.Value()))
	case "listenaddr":
		return fmt.Sprintf("must be host:port (got %q)", fmt.Sprint(fe.Value()))
	case "cidr|ip":
		return fmt.Sprintf("must be a CIDR or an IP address (got %q)", fmt.Sprint(fe.Value()))
	}
	return fmt.Sprintf("fails %s %s", fe.Tag(), fe.Param())
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

// WatchRoutes reports whether the route file is watched.
func (c *Config) WatchRoutes() bool { return c.Routes.Watch == nil || *c.Routes.Watch }

// AccessLog reports whether the access log is on.
func (c *Config) AccessLog() bool { return c.Log.AccessLog == nil || *c.Log.AccessLog }

// Secret is a reference to a secret value: env:NAME or file:PATH. A
// literal value is refused, so a secret never sits in the config file.
type Secret string

// UnmarshalYAML accepts only references.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var v string
	if err := n.Decode(&v); err != nil {
		return err
	}
	if v != "" && !strings.HasPrefix(v, "env:") && !strings.HasPrefix(v, "file:") {
		return fmt.Errorf("line %d: secrets are not written into the config file: use env:NAME or file:PATH", n.Line)
	}
	*s = Secret(v)
	return nil
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

// ByteSize is a size written as 1048576, "512KiB", "10MiB" or "1GiB".
type ByteSize int64

// UnmarshalYAML parses a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: invalid size %q (use e.g. 1048576, 512KiB, 10MiB)", n.Line, n.Value)
	}
	*b = ByteSize(v * mult)
	return nil
}

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
