// Package mobile is the app-key adapter for early mobile app versions that
// call with an app key instead of OAuth2: it maps the key to the app's
// OAuth2 client, obtains that client's client-credentials token (cached per
// app and device, with the device id as a claim) and hands the request on
// as an ordinary OAuth2 call, so services get a JWT with the anonymous
// level, the app's client_id and the device id.
package mobile

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/adapters/tokens"
	"github.com/ficus-gw/ficus/routes"
	"github.com/maypok86/otter/v2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"
)

// App is one mobile app.
type App struct {
	Name string `yaml:"name"`
	// Key is the app key, as a secret reference (env:NAME, file:PATH).
	Key string `yaml:"key"`
	// Disabled refuses the key (401) without removing the app.
	Disabled     bool   `yaml:"disabled"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"` // reference
	// MinVersion refuses older app versions with 426 (e.g. "2.3.0").
	MinVersion string `yaml:"min_version"`
	// PerKey and PerDevice limit requests per second (0: 50 and 5).
	PerKey    float64 `yaml:"per_key_rate" validate:"gte=0"`
	PerDevice float64 `yaml:"per_device_rate" validate:"gte=0"`
}

// Config is the `mobile` section of the process configuration.
type Config struct {
	// Paths are the path prefixes where app keys are accepted, written and
	// matched like a route's match.prefix (on the path as the gateway
	// normalises it).
	Paths         []string `yaml:"paths"`
	KeyHeader     string   `yaml:"key_header"`     // default X-App-Key
	DeviceHeader  string   `yaml:"device_header"`  // default X-Device-Id
	VersionHeader string   `yaml:"version_header"` // default X-App-Version
	Apps          []App    `yaml:"apps" validate:"dive"`
}

type app struct {
	App
	secret           string
	min              []int
	keyRate, devRate *otter.Cache[string, *rate.Limiter]
	tokens           *otter.Cache[string, *tokens.ClientCredentials]
	tokenURL         string
}

// Adapter is the app-key handler in front of the gateway.
type Adapter struct {
	// Client sends the token requests to the IDP (its transport carries
	// the TLS trust for the token endpoint). Default: http.DefaultClient.
	// Each token request is bounded by TokenTimeout and by the app's own
	// request: an app that gives up ends its wait.
	Client *http.Client
	// TokenTimeout bounds one token request. Default 10s.
	TokenTimeout time.Duration

	cfg   Config
	paths *routes.Prefixes
	apps  map[[32]byte]*app
	next  http.Handler
}

// New builds the adapter; resolve reads secret references; tokenURL is the
// IDP's token endpoint; next is the gateway.
func New(cfg Config, resolve func(string) (string, error), tokenURL string, next http.Handler) (*Adapter, error) {
	if cfg.KeyHeader == "" {
		cfg.KeyHeader = "X-App-Key"
	}
	if cfg.DeviceHeader == "" {
		cfg.DeviceHeader = "X-Device-Id"
	}
	if cfg.VersionHeader == "" {
		cfg.VersionHeader = "X-App-Version"
	}
	a := &Adapter{cfg: cfg, apps: map[[32]byte]*app{}, next: next}
	var errs []string
	var err error
	if a.paths, err = routes.CompilePrefixes(cfg.Paths); err != nil {
		errs = append(errs, fmt.Sprintf("mobile paths: %v", err))
	}
	owner := map[[32]byte]string{} // app name by key digest
	for _, ac := range cfg.Apps {
		key, err := resolve(ac.Key)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("mobile app %q: key: %v", ac.Name, err))
			continue
		case len(key) < 16:
			errs = append(errs, fmt.Sprintf("mobile app %q: key: must resolve to at least 16 characters", ac.Name))
			continue
		}
		digest := sha256.Sum256([]byte(key))
		if other, dup := owner[digest]; dup {
			// One key, two apps: only one of them could ever match, and
			// which one (its rates, its disabled flag) would be chance.
			errs = append(errs, fmt.Sprintf("mobile app %q: key: the same key as app %q", ac.Name, other))
			continue
		}
		owner[digest] = ac.Name
		secret, err := resolve(ac.ClientSecret)
		switch {
		case ac.ClientID == "" || ac.ClientSecret == "":
			errs = append(errs, fmt.Sprintf("mobile app %q: client_id and client_secret are required", ac.Name))
			continue
		case err != nil:
			errs = append(errs, fmt.Sprintf("mobile app %q: client_secret: %v", ac.Name, err))
			continue
		}
		p := &app{App: ac, secret: secret, tokenURL: tokenURL}
		if ac.MinVersion != "" {
			if p.min = parseVersion(ac.MinVersion); p.min == nil {
				errs = append(errs, fmt.Sprintf("mobile app %q: min_version %q is not a version like 2.3.0", ac.Name, ac.MinVersion))
			}
		}
		if p.PerKey == 0 {
			p.PerKey = 50
		}
		if p.PerDevice == 0 {
			p.PerDevice = 5
		}
		p.keyRate = otter.Must(&otter.Options[string, *rate.Limiter]{MaximumSize: 10, ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](time.Hour)})
		p.devRate = otter.Must(&otter.Options[string, *rate.Limiter]{MaximumSize: 100000, ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](10 * time.Minute)})
		p.tokens = otter.Must(&otter.Options[string, *tokens.ClientCredentials]{MaximumSize: 100000, ExpiryCalculator: otter.ExpiryAccessing[string, *tokens.ClientCredentials](time.Hour)})
		a.apps[digest] = p
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return a, nil
}

func parseVersion(s string) []int {
	var out []int
	for _, p := range strings.Split(strings.TrimPrefix(s, "v"), ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil
		}
		out = append(out, n)
	}
	return out
}

func older(v, min []int) bool {
	for i := 0; i < max(len(v), len(min)); i++ {
		a, b := 0, 0
		if i < len(v) {
			a = v[i]
		}
		if i < len(min) {
			b = min[i]
		}
		if a != b {
			return a < b
		}
	}
	return false
}

// applies reports whether app keys are accepted on r's path, decided on the
// path as the gateway normalises and matches it.
func (a *Adapter) applies(r *http.Request) bool {
	p, err := routes.NormalizePath(r.URL.EscapedPath())
	return err == nil && a.paths.Match(p) >= 0
}

func refuse(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}

func limiter(c *otter.Cache[string, *rate.Limiter], key string, r float64) *rate.Limiter {
	l, _ := c.Compute(key, func(old *rate.Limiter, found bool) (*rate.Limiter, otter.ComputeOp) {
		if found {
			return old, otter.CancelOp
		}
		return rate.NewLimiter(rate.Limit(r), int(math.Max(1, math.Ceil(2*r)))), otter.WriteOp
	})
	return l
}

// ServeHTTP wraps app-key requests into OAuth2 calls; anything else,
// including requests that already carry an OAuth2 token, goes on as it is.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(a.cfg.KeyHeader)
	if key == "" || r.Header.Get("Authorization") != "" || !a.applies(r) {
		r.Header.Del(a.cfg.KeyHeader)
		a.next.ServeHTTP(w, r)
		return
	}
	p := a.apps[sha256.Sum256([]byte(key))] // a lookup by hash: the key itself is never compared
	if p == nil || p.Disabled {
		refuse(w, http.StatusUnauthorized, "invalid_client", "unknown or disabled app key")
		return
	}
	if p.min != nil {
		v := parseVersion(r.Header.Get(a.cfg.VersionHeader))
		if v == nil || older(v, p.min) {
			refuse(w, http.StatusUpgradeRequired, "upgrade_required", fmt.Sprintf("this app version is no longer supported; please update %s to %s or later", p.Name, p.MinVersion))
			return
		}
	}
	device := r.Header.Get(a.cfg.DeviceHeader)
	if len(device) > 128 {
		refuse(w, http.StatusBadRequest, "invalid_request", "device id too long")
		return
	}
	if !limiter(p.keyRate, "k", p.PerKey).Allow() || (device != "" && !limiter(p.devRate, device, p.PerDevice).Allow()) {
		refuse(w, http.StatusTooManyRequests, "slow_down", "too many requests")
		return
	}
	ts, _ := p.tokens.Compute(device, func(old *tokens.ClientCredentials, found bool) (*tokens.ClientCredentials, otter.ComputeOp) {
		if found {
			return old, otter.CancelOp
		}
		cc := &clientcredentials.Config{ClientID: p.ClientID, ClientSecret: p.secret, TokenURL: p.tokenURL}
		if device != "" {
			cc.EndpointParams = url.Values{"device_id": {device}}
		}
		return &tokens.ClientCredentials{Config: cc, Client: a.Client, Timeout: a.TokenTimeout}, otter.WriteOp
	})
	tok, err := ts.Token(r.Context())
	if err != nil {
		refuse(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot obtain the app's token")
		return
	}
	r.Header.Del(a.cfg.KeyHeader)
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	a.next.ServeHTTP(w, r)
}
