package strangler

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler/tlsconf"
	"github.com/sony/gobreaker/v2"
)

// Defaults for upstream pools; every one can be set per upstream.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleTimeout           = 90 * time.Second
	DefaultBodyIdleTimeout       = 60 * time.Second
	DefaultMaxIdleConns          = 256
	DefaultBreakerFailures       = 5
	DefaultBreakerOpenFor        = 10 * time.Second
)

// upstream is one backend with its connection pool and breaker. It is
// shared by every route that targets it and survives reloads that leave
// its configuration unchanged.
type upstream struct {
	name          string
	cfg           routes.Upstream
	url           *url.URL
	monolith      bool
	audience      string
	preserveHost  bool
	internalHosts map[string]bool
	bodyIdle      time.Duration
	transport     *http.Transport
	// caSum is the hash of the CA bundle read for tls.ca_file: a reload
	// that finds it changed builds the upstream anew.
	caSum [sha256.Size]byte
	// send carries requests: fast, else the transport (benchmarks put a
	// stand-in here).
	send http.RoundTripper
	// fast is the fast path of a plain-HTTP upstream; nil otherwise.
	fast *fastTransport
	// spanName names its attempts' spans.
	spanName string
	// breaker is nil when the upstream has none (the monolith by default).
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// newUpstream builds an upstream; tc is its TLS (nil: Go's defaults for
// an https URL), from loadTLS.
func newUpstream(name string, cfg *routes.Upstream, monolith bool, tc *upstreamTLS, onState func(name string, to gobreaker.State)) (*upstream, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	up := &upstream{
		name:          name,
		cfg:           *cfg,
		url:           u,
		monolith:      monolith,
		audience:      cfg.Audience,
		preserveHost:  monolith,
		internalHosts: map[string]bool{strings.ToLower(u.Hostname()): true, strings.ToLower(u.Host): true},
		bodyIdle:      cfg.Timeouts.BodyIdle.Std(DefaultBodyIdleTimeout),
		spanName:      "upstream " + name,
	}
	if up.audience == "" {
		up.audience = name
	}
	if cfg.PreserveHost != nil {
		up.preserveHost = *cfg.PreserveHost
	}
	for _, h := range cfg.InternalHosts {
		up.internalHosts[strings.ToLower(h)] = true
	}
	maxIdle := cfg.MaxIdleConns
	if maxIdle == 0 {
		maxIdle = DefaultMaxIdleConns
	}
	dialer := &net.Dialer{Timeout: cfg.Timeouts.Dial.Std(DefaultDialTimeout), KeepAlive: 30 * time.Second}
	up.transport = &http.Transport{
		Proxy:                 nil, // never route upstream calls through an environment proxy
		DialContext:           dialer.DialContext,
		MaxIdleConns:          maxIdle,
		MaxIdleConnsPerHost:   maxIdle,
		MaxConnsPerHost:       cfg.MaxConns,
		IdleConnTimeout:       cfg.Timeouts.Idle.Std(DefaultIdleTimeout),
		ResponseHeaderTimeout: cfg.Timeouts.ResponseHeader.Std(DefaultResponseHeaderTimeout),
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pass bodies through as they are: no Accept-Encoding added, no
		// transparent decompression.
		DisableCompression: true,
		// HTTP/2 to an https upstream that offers it by ALPN (a custom
		// dialer turns it off otherwise); WebSocket upgrades still go over
		// HTTP/1.1, which net/http chooses for them.
		ForceAttemptHTTP2: true,
	}
	if tc != nil {
		up.transport.TLSClientConfig = tc.config
		up.caSum = tc.caSum
	}
	up.send = up.transport
	if fastPathSupported && u.Scheme == "http" && cfg.MaxConns == 0 {
		// Plain HTTP/1.1 without a connection limit: bodiless reads take
		// the fast path (fastpath.go), everything else the transport.
		up.fast = newFastTransport(up.transport, u.Host, dialer.DialContext, maxIdle,
			up.transport.IdleConnTimeout, up.transport.ResponseHeaderTimeout)
		up.send = up.fast
	}
	if breakerOn(cfg, monolith) {
		failures := cfg.Breaker.Failures
		if failures == 0 {
			failures = DefaultBreakerFailures
		}
		half := cfg.Breaker.HalfOpenRequests
		if half == 0 {
			half = 1
		}
		up.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        name,
			MaxRequests: half,
			Timeout:     cfg.Breaker.OpenFor.Std(DefaultBreakerOpenFor),
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
			OnStateChange: func(name string, _, to gobreaker.State) {
				if onState != nil {
					onState(name, to)
				}
			},
			// What the client did says nothing about the upstream.
			IsExcluded: func(err error) bool { return errors.Is(err, errClientFault) },
		})
	}
	return up, nil
}

// closeIdle closes the upstream's idle connections.
func (u *upstream) closeIdle() {
	if u.fast != nil {
		u.fast.CloseIdleConnections()
		return
	}
	u.transport.CloseIdleConnections()
}

// breakerOn reports whether an upstream gets a breaker: new services do
// unless the rule file turns it off; the monolith, which has nothing to
// fall back to, only when the rule file turns it on.
func breakerOn(cfg *routes.Upstream, monolith bool) bool {
	if cfg.Breaker.Disabled != nil {
		return !*cfg.Breaker.Disabled
	}
	return !monolith
}

// sameConfig reports whether the upstream can be kept across a reload:
// the same settings, and the same CA bundle (tc, read for this reload).
func (u *upstream) sameConfig(cfg *routes.Upstream, monolith bool, tc *upstreamTLS) bool {
	var sum [sha256.Size]byte
	if tc != nil {
		sum = tc.caSum
	}
	return u.monolith == monolith && reflect.DeepEqual(&u.cfg, cfg) && u.caSum == sum
}

// upstreamTLS is an upstream's TLS client configuration, read from the
// files of its tls block for one build.
type upstreamTLS struct {
	config *tls.Config
	caSum  [sha256.Size]byte
}

// loadTLS reads the files of upstream name's tls block (nil: none). A
// file that cannot be read or parsed is an error located at its key in
// f. The client certificate is read again when its files change
// (tlsconf.Keypair.GetClientCertificate); logf hears of those reloads.
func loadTLS(f *routes.File, name string, t *routes.UpstreamTLS, logf func(msg string, args ...any)) (*upstreamTLS, error) {
	if t == nil {
		return nil, nil
	}
	field := "upstreams." + name + ".tls."
	minV, err := tlsconf.ParseVersion(t.MinVersion)
	if err != nil {
		return nil, f.FieldError(field+"min_version", err)
	}
	out := &upstreamTLS{config: &tls.Config{MinVersion: minV, ServerName: t.ServerName}}
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, f.FieldError(field+"ca_file", err)
		}
		if out.config.RootCAs, err = tlsconf.LoadCAs(t.CAFile); err != nil {
			return nil, f.FieldError(field+"ca_file", err)
		}
		out.caSum = sha256.Sum256(b)
	}
	if t.CertFile != "" {
		kp, err := tlsconf.LoadKeypair(t.CertFile, t.KeyFile, func(changed bool, err error) {
			if err != nil {
				logf("upstream client certificate not reloaded; the previous one stays", "upstream", name, "error", err.Error())
			} else {
				logf("upstream client certificate reloaded", "upstream", name)
			}
		})
		if err != nil {
			return nil, f.FieldError(field+"cert_file", err)
		}
		out.config.GetClientCertificate = kp.GetClientCertificate
	}
	return out, nil
}

// roundTrip sends out and keeps the breaker's count. Upstream faults — no
// connection, a timeout, a broken connection, a 502, 503 or 504 — count
// against the upstream; a failure that clientFault blames on the client
// (its body could not be read, it went away) never does. A request the
// upstream cannot have received fails with errNotSent.
func (u *upstream) roundTrip(out *http.Request, clientFault func() bool) (*http.Response, error) {
	var done func(error)
	if u.breaker != nil {
		var err error
		if done, err = u.breaker.Allow(); err != nil {
			if out.Body != nil {
				out.Body.Close() // a RoundTripper closes the body, whatever happens
			}
			return nil, &notSentError{err}
		}
	}
	resp, err := u.send.RoundTrip(out)
	if done != nil {
		switch {
		case err != nil && clientFault():
			done(errClientFault)
		case err != nil:
			done(err)
		case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
			done(errUpstreamStatus)
		default:
			done(nil)
		}
	}
	if err != nil && dialFailed(err) {
		return nil, &notSentError{err}
	}
	return resp, err
}
