package strangler

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/sony/gobreaker/v2"
)

// Defaults for upstream pools; every one can be set per upstream.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleTimeout           = 90 * time.Second
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
	transport     *http.Transport
	breaker       *gobreaker.TwoStepCircuitBreaker[struct{}]
}

func newUpstream(name string, cfg *routes.Upstream, monolith bool, onState func(name string, to gobreaker.State)) (*upstream, error) {
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
	}
	if !cfg.Breaker.Disabled {
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
			// A client that went away says nothing about the upstream.
			IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		})
	}
	return up, nil
}

// sameConfig reports whether the upstream can be kept across a reload.
func (u *upstream) sameConfig(cfg *routes.Upstream, monolith bool) bool {
	return u.monolith == monolith && reflect.DeepEqual(&u.cfg, cfg)
}

func (u *upstream) state() gobreaker.State {
	if u.breaker == nil {
		return gobreaker.StateClosed
	}
	return u.breaker.State()
}

// errNotSent marks a failure that happened before any of the request
// reached the upstream: the breaker was open or the connection could not be
// made. Such a request may safely go to the monolith instead.
var errNotSent = errors.New("request not sent")

type notSentError struct{ err error }

func (e *notSentError) Error() string { return "upstream not reached: " + e.err.Error() }
func (e *notSentError) Unwrap() []error {
	return []error{errNotSent, e.err}
}

// breakerTransport counts an upstream's failures in its breaker and turns
// "not sent" failures into errNotSent.
type breakerTransport struct{ up *upstream }

func (t breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	up := t.up
	if up.breaker == nil {
		resp, err := up.transport.RoundTrip(req)
		if err != nil && dialFailed(err) {
			return nil, &notSentError{err}
		}
		return resp, err
	}
	done, err := up.breaker.Allow()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &notSentError{err}
	}
	resp, err := up.transport.RoundTrip(req)
	switch {
	case err != nil:
		done(err)
		if dialFailed(err) {
			return nil, &notSentError{err}
		}
	case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		done(errUpstreamStatus)
	default:
		done(nil)
	}
	return resp, err
}

var errUpstreamStatus = errors.New("upstream answered 502, 503 or 504")

// dialFailed reports whether err happened while connecting, before any of
// the request was written.
func dialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
