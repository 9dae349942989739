package routes

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Bounds of a rate limit.
const (
	// DefaultRateLimitKeys is a limit's max_keys when unset.
	DefaultRateLimitKeys = 65536
	// MaxRateLimitKeys bounds max_keys.
	MaxRateLimitKeys = 1000000
	// MaxRateLimitBurst bounds burst (and the default burst).
	MaxRateLimitBurst = 1000000
	maxRateCount      = 1000000000
)

// RateLimit is a token bucket per caller: each caller (a key, chosen by
// By) may send Burst requests at once and Rate on average; beyond that
// the gateway answers 429 with Retry-After. The buckets are this
// instance's: N instances behind a load balancer let N times the rate
// through.
//
// In YAML, a route's `rate_limit: NAME` is shorthand for {use: NAME}: the
// limit named NAME in the file's rate_limits.
type RateLimit struct {
	// Use names a limit of the file's rate_limits (on a route only); the
	// other fields are then unset. Routes that use the same named limit
	// share its buckets.
	Use string `yaml:"use,omitempty"`
	// Rate is the sustained rate: N/s, N/m, N/h or N per a duration
	// (N/10s). Required.
	Rate Rate `yaml:"rate,omitempty"`
	// Burst is how many requests a caller may send at once. Zero means
	// the N of Rate (at most 1,000,000).
	Burst int `yaml:"burst,omitempty" validate:"gte=0,lte=1000000"`
	// By is what a caller is: client (the OAuth2 client id of its token;
	// routes with policy oauth2, optional or jwt), address (the client
	// address, through trusted proxies; an IPv6 address counts by its
	// /64) or header (the value of Header). Required.
	By string `yaml:"by,omitempty" validate:"omitempty,oneof=client address header"`
	// Header is the request header whose value is the key of by: header
	// (e.g. X-Api-Key). Its values are kept only as keyed hashes.
	Header string `yaml:"header,omitempty"`
	// Absent says what counts a request that has no key (by: client on
	// an anonymous request, by: header without the header): address, a
	// bucket per client address as for by: address, or shared, one
	// bucket for all of them. Empty means address.
	Absent string `yaml:"absent,omitempty" validate:"omitempty,oneof=address shared"`
	// MaxKeys bounds the callers whose buckets are kept at once; when more
	// arrive, the least used go (a bucket idle until it is full again
	// goes anyway). Zero means 65,536; at most 1,000,000.
	MaxKeys int `yaml:"max_keys,omitempty" validate:"gte=0,lte=1000000"`

	name string // the key in rate_limits; "" for a route's own limit
}

// Name returns the limit's key in the file's rate_limits, or "" for a
// route's own limit.
func (l *RateLimit) Name() string { return l.name }

// BurstOrDefault is Burst, or the N of Rate (at most MaxRateLimitBurst)
// when zero.
func (l *RateLimit) BurstOrDefault() int {
	if l.Burst != 0 {
		return l.Burst
	}
	return max(1, min(int(l.Rate.Count), MaxRateLimitBurst))
}

// MaxKeysOrDefault is MaxKeys, or DefaultRateLimitKeys when zero.
func (l *RateLimit) MaxKeysOrDefault() int {
	if l.MaxKeys != 0 {
		return l.MaxKeys
	}
	return DefaultRateLimitKeys
}

// AbsentOrDefault is Absent, or "address" when empty.
func (l *RateLimit) AbsentOrDefault() string {
	if l.Absent == "" {
		return "address"
	}
	return l.Absent
}

// UnmarshalYAML reads a limit, or the shorthand NAME for {use: NAME}.
func (l *RateLimit) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = RateLimit{Use: n.Value}
		return nil
	case yaml.MappingNode:
		// Node.Decode does not refuse unknown fields as Parse does.
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i]; k.Value {
			case "use", "rate", "burst", "by", "header", "absent", "max_keys":
			default:
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found in rate_limit (use, rate, burst, by, header, absent, max_keys)", k.Line, k.Value)}}
			}
		}
		type plain RateLimit // without this method
		return n.Decode((*plain)(l))
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: rate_limit must be the name of one of rate_limits or {rate: 100/s, by: client}", n.Line)}}
}

// Rate is Count requests per Per, written N/s, N/m, N/h or N/DURATION
// (e.g. 100/s, 6000/m, 5/10s).
type Rate struct {
	Count int64
	Per   time.Duration
}

// PerSecond is the rate in requests per second; 0 for the zero Rate.
func (r Rate) PerSecond() float64 {
	if r.Per <= 0 {
		return 0
	}
	return float64(r.Count) / r.Per.Seconds()
}

func (r Rate) String() string {
	if r.Per == 0 {
		return ""
	}
	unit := r.Per.String()
	switch r.Per {
	case time.Second:
		unit = "s"
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.FormatInt(r.Count, 10) + "/" + unit
}

// ParseRate parses N/s, N/m, N/h or N/DURATION: N a whole number from 1
// to 1,000,000,000, the duration from 1ms to 24h.
func ParseRate(s string) (Rate, error) {
	count, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("invalid rate %q (use e.g. 100/s, 6000/m, 10/h or 5/10s)", s)
	}
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil || n < 1 || n > maxRateCount {
		return Rate{}, fmt.Errorf("invalid rate %q: the count must be a whole number from 1 to %d", s, maxRateCount)
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		if per, err = time.ParseDuration(unit); err != nil || per < time.Millisecond || per > 24*time.Hour {
			return Rate{}, fmt.Errorf("invalid rate %q: per s, m, h or a duration from 1ms to 24h (e.g. 5/10s)", s)
		}
	}
	if math.IsInf(float64(n)/per.Seconds(), 0) {
		return Rate{}, fmt.Errorf("invalid rate %q", s)
	}
	return Rate{Count: n, Per: per}, nil
}

// UnmarshalYAML parses a rate. Its error is a *yaml.TypeError, so every
// bad value of a file is reported.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseRate(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*r = v
	return nil
}

// MarshalYAML writes the rate as N/unit.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// Limit returns the rate limit in force on the route (its own, or the
// named one it uses), or nil. The file must be validated.
func (r *Route) Limit() *RateLimit { return r.limit }

// rateLimitKeys are the values of RateLimit.By and of RateLimit.Absent.
var (
	rateLimitKeys   = oneOf("client address header")
	rateLimitAbsent = oneOf("address shared")
)

// rateLimitRules applies the validate tags of RateLimit by hand (see
// routeRules).
func rateLimitRules(p string, l *RateLimit, fail func(field, tag, param string, value any), within func(field string, v, lo, hi int)) {
	within(p+".burst", l.Burst, 0, MaxRateLimitBurst)
	if l.By != "" && !rateLimitKeys.in[l.By] {
		fail(p+".by", "oneof", rateLimitKeys.param, l.By)
	}
	if l.Absent != "" && !rateLimitAbsent.in[l.Absent] {
		fail(p+".absent", "oneof", rateLimitAbsent.param, l.Absent)
	}
	within(p+".max_keys", l.MaxKeys, 0, MaxRateLimitKeys)
}

// checkRateLimit checks a limit's fields together; named is true for one
// of the file's rate_limits. p is its field path.
func (f *File) checkRateLimit(p string, l *RateLimit, named bool) Errors {
	var errs Errors
	add := func(field, format string, args ...any) { errs = append(errs, f.errAt(p+field, format, args...)) }
	if named && l.Use != "" {
		add(".use", "a limit of rate_limits is written out, not used from another")
		return errs
	}
	if l.Rate.Count == 0 {
		add(".rate", "is required (e.g. 100/s, 6000/m, 10/h)")
	}
	if l.By == "" {
		add(".by", "is required: client, address or header")
	}
	switch {
	case l.By == "header" && l.Header == "":
		add(".header", "by: header needs the header's name (e.g. header: X-Api-Key)")
	case l.By != "header" && l.Header != "":
		add(".header", "is for by: header")
	default:
		checkHeader(".header", l.Header, add)
	}
	if l.By == "address" && l.Absent != "" {
		add(".absent", "a request always has an address; absent is for by: client and by: header")
	}
	if l.Burst == 0 && l.Rate.Count > MaxRateLimitBurst {
		add(".burst", "the default burst (the %d of rate) is above %d; set burst", l.Rate.Count, MaxRateLimitBurst)
	}
	return errs
}

// checkRouteLimit checks a route's rate_limit and sets the limit in
// force.
func (f *File) checkRouteLimit(p string, r *Route) Errors {
	l := r.RateLimit
	p += ".rate_limit"
	if l.Use != "" {
		if l.Rate != (Rate{}) || l.Burst != 0 || l.By != "" || l.Header != "" || l.Absent != "" || l.MaxKeys != 0 {
			return Errors{f.errAt(p+".use", "use names a limit of rate_limits; set no other field with it")}
		}
		named := f.RateLimits[l.Use]
		if named == nil {
			return Errors{f.errAt(p+".use", "unknown rate limit %q (not in rate_limits)", l.Use)}
		}
		if named.By == "client" && !clientPolicies[r.Policy()] {
			return Errors{f.errAt(p+".use", "rate limit %s is by client, which needs auth policy oauth2, optional or jwt (the client id comes from the caller's token); this route's is %s", l.Use, r.Policy())}
		}
		r.limit = named
		return nil
	}
	errs := f.checkRateLimit(p, l, false)
	if l.By == "client" && !clientPolicies[r.Policy()] {
		errs = append(errs, f.errAt(p+".by", "by: client needs auth policy oauth2, optional or jwt (the client id comes from the caller's token); this route's is %s", r.Policy()))
	}
	if len(errs) == 0 {
		r.limit = l
	}
	return errs
}

// clientPolicies are the auth policies whose callers carry an OAuth2
// client id.
var clientPolicies = map[string]bool{"oauth2": true, "optional": true, "jwt": true}
