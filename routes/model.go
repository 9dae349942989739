package routes

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"
)

// File is one rule file: named upstreams and named routes. The zero value is
// not valid; use Parse or ParseFile.
type File struct {
	// Version is the format version; only 1 exists.
	Version int `yaml:"version" validate:"eq=1"`
	// Monolith names the upstream that is the legacy monolith. Requests that
	// match no route go there unchanged.
	Monolith string `yaml:"monolith" validate:"required"`
	// Upstreams maps a name to an upstream.
	Upstreams map[string]*Upstream `yaml:"upstreams" validate:"required,min=1,dive,keys,upstreamname,endkeys,required"`
	// Routes are the rules, in any order: the most specific match wins.
	// Each is required (not null); the field rules of routes are applied
	// by hand (routeRules), not through validator.
	Routes []*Route `yaml:"routes" validate:"-"`
	// Bridges maps a name to a legacy session bridge, which routes with
	// auth policy bridge use. Nil means none.
	Bridges map[string]*Bridge `yaml:"bridges" validate:"dive,keys,upstreamname,endkeys,required"`
	// RateLimits maps a name to a rate limit that routes use by that name
	// (rate_limit: NAME); every route using one draws from the same
	// buckets. Nil means none.
	RateLimits map[string]*RateLimit `yaml:"rate_limits" validate:"dive,keys,upstreamname,endkeys,required"`

	// Name is where the file came from, used in error messages.
	Name string `yaml:"-"`

	// tlsAt is where the upstreams' tls keys stand in the file, by field
	// path (upstreams.NAME.tls.KEY), for FieldError.
	tlsAt map[string][2]int

	// matcher is the one validation compiled from routes (see Compile).
	matcher *Matcher
	routes  []*Route
}

// Upstream is one backend: the monolith or a new service.
type Upstream struct {
	// URL is the base URL (http or https). A path in it is prefixed to every
	// forwarded path.
	URL string `yaml:"url" validate:"required,url"`
	// Audience is the audience of JWTs minted for this upstream (used by the
	// auth stage). Empty means the upstream's name.
	Audience string `yaml:"audience"`
	// PreserveHost forwards the client's Host header instead of the
	// upstream's. Nil means true for the monolith and false otherwise.
	PreserveHost *bool `yaml:"preserve_host"`
	// InternalHosts are extra host names (besides the URL's) that the upstream
	// may put in Location and Set-Cookie Domain; responses rewrite them to the
	// public host.
	InternalHosts []string `yaml:"internal_hosts" validate:"dive,required"`
	// Timeouts for the connection pool. Zero values take the defaults.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxIdleConns is the keep-alive pool size. Zero means 256.
	MaxIdleConns int `yaml:"max_idle_conns" validate:"gte=0,lte=100000"`
	// MaxConns caps connections to the upstream. Zero means no cap.
	MaxConns int `yaml:"max_conns" validate:"gte=0,lte=100000"`
	// Breaker configures the circuit breaker.
	Breaker Breaker `yaml:"breaker"`
	// TLS is how ficus calls an https upstream: the CAs it trusts, the
	// name its certificate must carry, the client certificate ficus
	// presents. Nil means the system's roots, the URL's host, no client
	// certificate.
	TLS *UpstreamTLS `yaml:"tls"`
}

// UpstreamTLS is the TLS of calls to one https upstream. Paths are
// absolute: a rule file may be stored in the route store and served by
// instances whose working directory differs. The files are read when
// ficus builds a rule table; one it cannot read refuses the table.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the CAs trusted for the upstream's
	// certificate, in place of the system's roots. Empty: the system's.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the upstream's certificate must carry, and
	// the SNI sent. Empty: the URL's host.
	ServerName string `yaml:"server_name" validate:"omitempty,hostname_rfc1123"`
	// CertFile and KeyFile are the client certificate presented when the
	// upstream asks for one (mTLS), read again when the files change.
	CertFile string `yaml:"cert_file" validate:"required_with=KeyFile"`
	KeyFile  string `yaml:"key_file" validate:"required_with=CertFile"`
	// MinVersion is the oldest TLS version used: 1.2 (the default) or 1.3.
	MinVersion string `yaml:"min_version" validate:"omitempty,oneof=1.2 1.3"`

	// at is where each key's value stands in the file, for errors found
	// when the files are read; Parse moves it to the File.
	at map[string][2]int
}

// UnmarshalYAML decodes the block, refusing unknown keys, and notes where
// each key's value stands.
func (t *UpstreamTLS) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: tls must be a mapping (ca_file, server_name, cert_file, key_file, min_version)", n.Line)}}
	}
	at := map[string][2]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch k.Value {
		case "ca_file", "server_name", "cert_file", "key_file", "min_version":
			at[k.Value] = [2]int{n.Content[i+1].Line, n.Content[i+1].Column}
		default:
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found in tls (ca_file, server_name, cert_file, key_file, min_version)", k.Line, k.Value)}}
		}
	}
	type plain UpstreamTLS // without this method
	if err := n.Decode((*plain)(t)); err != nil {
		return err
	}
	t.at = at
	return nil
}

// Timeouts bound the phases of an upstream call.
type Timeouts struct {
	// Dial bounds connecting. Zero means 5s.
	Dial Duration `yaml:"dial" validate:"gte=0"`
	// ResponseHeader bounds the wait for the response headers once the
	// request is sent. Zero means 60s.
	ResponseHeader Duration `yaml:"response_header" validate:"gte=0"`
	// Idle closes pooled connections idle this long. Zero means 90s.
	Idle Duration `yaml:"idle" validate:"gte=0"`
	// BodyIdle ends a response whose body the upstream has stopped sending:
	// when this long passes without a byte, the client's response is cut
	// off (the client sees it incomplete) and the upstream connection
	// closed. Zero means 60s.
	BodyIdle Duration `yaml:"body_idle" validate:"gte=0"`
}

// Breaker configures an upstream's circuit breaker (sony/gobreaker).
type Breaker struct {
	// Disabled turns the breaker off. Nil means off for the monolith and
	// on for new services: a new service's breaker sends its traffic to the
	// monolith while it is open, but the monolith has nothing to fall back
	// to, so a breaker there would only turn some failing paths into every
	// path failing. Set it to false to put a breaker on the monolith anyway
	// (it then answers 503 while open, sparing a monolith that is down).
	Disabled *bool `yaml:"disabled"`
	// Failures is how many consecutive failures open the breaker. Zero means 5.
	Failures uint32 `yaml:"failures" validate:"lte=10000"`
	// OpenFor is how long the breaker stays open before it lets a probe
	// through. Zero means 10s.
	OpenFor Duration `yaml:"open_for" validate:"gte=0"`
	// HalfOpenRequests is how many probes are let through while half-open.
	// Zero means 1.
	HalfOpenRequests uint32 `yaml:"half_open_requests" validate:"lte=10000"`
}

// Route is one rule: what it matches and where matching traffic goes.
type Route struct {
	// Name identifies the route in metrics, logs, diffs and the audit.
	Name  string `yaml:"name" validate:"required,routename"`
	Match Match  `yaml:"match"`
	// To sends all matching traffic to one upstream (exclusive with Split).
	To string `yaml:"to"`
	// Split divides traffic by weight (percent, summing to 100).
	Split []Split `yaml:"split" validate:"omitempty,min=1,dive"`
	// Sticky keeps a visitor on one side of a split.
	Sticky *Sticky `yaml:"sticky"`
	// Override lets testers force a side with a header or a cookie.
	Override *Override `yaml:"override"`
	// Fallback says what happens when a new upstream cannot take a request.
	Fallback Fallback `yaml:"fallback"`
	// Rewrite adapts paths and responses of new upstreams.
	Rewrite *Rewrite `yaml:"rewrite"`
	// Auth is the route's auth policy. Nil means passthrough.
	Auth *Auth `yaml:"auth"`
	// Shadow mirrors a share of requests to another upstream.
	Shadow *Shadow `yaml:"shadow"`
	// Metrics is "off" for a route that gets no series of its own in
	// ficus_requests_total, ficus_request_duration_seconds and
	// ficus_fallbacks_total; "" or "on" gives it series from its first
	// request on.
	Metrics string `yaml:"metrics" validate:"omitempty,oneof=on off"`
	// MetricsGroup reports the route in the series of a group, labelled
	// route="group:NAME", shared by every route of the group (exclusive
	// with metrics: off).
	MetricsGroup string `yaml:"metrics_group" validate:"omitempty,routename"`
	// Analysis watches the new side against the legacy side, rolls the
	// route back when the new side fails and raises its weight along
	// steps while it passes. Nil means no analysis.
	Analysis *Analysis `yaml:"analysis"`
	// RateLimit limits the route's requests per caller: inline, or the
	// name of one of the file's rate_limits. Nil means no limit.
	RateLimit *RateLimit `yaml:"rate_limit"`

	limit *RateLimit // the limit in force (RateLimit or the named one), set by validation
}

// MetricsGroupPrefix begins the route label of a metrics group's series;
// route names cannot contain its colon.
const MetricsGroupPrefix = "group:"

// MetricsLabel is the route label of the route's series: its name, its
// group's label, or "" when its metrics are off.
func (r *Route) MetricsLabel() string {
	switch {
	case r.Metrics == "off":
		return ""
	case r.MetricsGroup != "":
		return MetricsGroupPrefix + r.MetricsGroup
	}
	return r.Name
}

// Match selects requests. Exactly one of Path and Prefix is set.
type Match struct {
	// Host matches the request host (without port), case-insensitively.
	// Empty matches any host.
	Host string `yaml:"host" validate:"omitempty,hostname_rfc1123"`
	// Path matches the whole path: literal segments and {name} segments
	// that match any one segment.
	Path string `yaml:"path"`
	// Prefix matches the path and everything below it, on segment
	// boundaries: prefix /api matches /api and /api/x, not /apix.
	Prefix string `yaml:"prefix"`
	// Methods limits the methods; empty means all. GET also matches HEAD.
	Methods []string `yaml:"methods" validate:"dive,required"`
	// Header also requires a request header.
	Header *HeaderMatch `yaml:"header"`
}

// HeaderMatch requires a header; with Value, that exact value. In YAML,
// `header: NAME` is shorthand for {name: NAME}: the header must be present.
type HeaderMatch struct {
	Name  string `yaml:"name" validate:"required"`
	Value string `yaml:"value"`
}

// UnmarshalYAML reads {name: NAME, value: VALUE} or the shorthand NAME.
// Problems are yaml.TypeErrors, so they are reported with their line
// among the file's other problems.
func (h *HeaderMatch) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*h = HeaderMatch{Name: n.Value}
		return nil
	case yaml.MappingNode:
		// Node.Decode does not refuse unknown fields as Parse does.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value != "name" && k.Value != "value" {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found in match.header (name, value)", k.Line, k.Value)}}
			}
		}
		type plain HeaderMatch // without this method
		return n.Decode((*plain)(h))
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: match.header must be a header name or {name: NAME, value: VALUE}", n.Line)}}
}

// Split is one weighted target.
type Split struct {
	To     string `yaml:"to" validate:"required"`
	Weight int    `yaml:"weight" validate:"gte=0,lte=100"`
}

// Sticky keeps a visitor on the same side. Exactly one key source is set.
type Sticky struct {
	// Cookie is the cohort cookie: ficus sets it with a random id when absent.
	Cookie string `yaml:"cookie"`
	// Header takes the cohort id from a request header (e.g. a user id).
	Header string `yaml:"header"`
	// Claim takes the cohort id from a claim of the caller's token (enforced
	// with the auth stage).
	Claim string `yaml:"claim"`
	// Salt changes the cohorts of this route; empty shares cohorts with every
	// other route that has no salt, so a user journey stays on one side.
	Salt string `yaml:"salt"`
	// MaxAge of the cohort cookie. Zero means 30 days.
	MaxAge Duration `yaml:"max_age" validate:"gte=0"`
}

// Override lets a tester force a side: the header or cookie value names a
// target of the route (an upstream name).
type Override struct {
	Header string `yaml:"header"`
	Cookie string `yaml:"cookie"`
}

// Fallback: requests with idempotent methods fall back to the monolith when a
// new upstream's breaker is open or its connection fails before the request
// was sent.
type Fallback struct {
	// Disabled turns fallback off for this route.
	Disabled bool `yaml:"disabled"`
	// NonIdempotent also falls back for POST, PATCH and other non-idempotent
	// methods (safe only before the request was sent, which is when ficus
	// falls back).
	NonIdempotent bool `yaml:"non_idempotent"`
}

// Rewrite adapts a new upstream to the monolith's public contract.
type Rewrite struct {
	// StripPrefix is removed from the path before forwarding.
	StripPrefix string `yaml:"strip_prefix"`
	// AddPrefix is put in front of the (stripped) path.
	AddPrefix string `yaml:"add_prefix"`
	// Responses rewrites Location and Set-Cookie Domain/Path naming an
	// internal host or prefix back to the public ones. Nil means true.
	Responses *bool `yaml:"responses"`
	// CookieDomain replaces an internal cookie domain; empty drops the
	// Domain attribute (a host-only cookie on the public host).
	CookieDomain string `yaml:"cookie_domain"`
	// Monolith applies the rewrite to the monolith side too.
	Monolith bool `yaml:"monolith"`
}

// Auth is a route's auth policy. The gateway auth stage enforces it.
type Auth struct {
	Policy    string   `yaml:"policy" validate:"required,oneof=passthrough oauth2 optional jwt session bridge"`
	ScopesAll []string `yaml:"scopes_all" validate:"dive,required"`
	ScopesAny []string `yaml:"scopes_any" validate:"dive,required"`
	Levels    []string `yaml:"levels" validate:"dive,oneof=anonymous returning logged_on"`
	// Client is the OAuth2 client whose application token anonymous
	// requests get (policy optional).
	Client string `yaml:"client"`
	// Header carries the JWT to the upstream. Empty means Authorization.
	Header string `yaml:"header"`
	// Bridge names the legacy session bridge of policy bridge (a key of
	// the file's bridges).
	Bridge string `yaml:"bridge"`
	// RequireLogin (policy bridge) refuses callers without a logged-on
	// monolith session: 401, or a redirect to the bridge's login_url.
	// False lets them through to the new service with no identity.
	RequireLogin bool `yaml:"require_login"`

	bridge *Bridge // the file's Bridges[Bridge], set by validation
}

// BridgeRule returns the legacy session bridge a route of policy bridge
// uses, or nil.
func (a *Auth) BridgeRule() *Bridge {
	if a == nil {
		return nil
	}
	return a.bridge
}

// Bridge is a legacy session bridge: on a request that carries the
// monolith's session cookie, the gateway asks the monolith's "who am I"
// endpoint whose session it is and gives new services a JWT for that
// user. The monolith keeps its cookie.
type Bridge struct {
	// Cookie is the monolith's session cookie name (JSESSIONID, PHPSESSID,
	// _myapp_session).
	Cookie string `yaml:"cookie" validate:"required"`
	// Whoami is the monolith endpoint that says whose session it is.
	Whoami Whoami `yaml:"whoami"`
	// CacheTTL is how long an answer (logged on or not) is reused for one
	// cookie value; a logout on the monolith reaches new services within
	// it. Zero means 10s; at most 5m.
	CacheTTL Duration `yaml:"cache_ttl" validate:"gte=0"`
	// Mapping says where in the answer's JSON the user's data is.
	Mapping BridgeMapping `yaml:"mapping"`
	// Client is the OAuth2 client id the minted JWTs name as client_id.
	Client string `yaml:"client" validate:"required"`
	// Scope is the scope of the minted JWTs (space-separated). Empty
	// means none.
	Scope string `yaml:"scope"`
	// SubjectPrefix is put in front of the monolith's user id in the JWT's
	// sub (e.g. "legacy:"), so that it never equals a ficus user id.
	// Empty means none.
	SubjectPrefix string `yaml:"subject_prefix"`
	// LoginURL, if set, is where a route with require_login redirects
	// (302) a browser that is not logged on (GET or HEAD accepting
	// text/html); others get 401. Empty means always 401.
	LoginURL string `yaml:"login_url"`

	name, whoamiURL string // set by validation
}

// Name returns the bridge's key in the rule file.
func (b *Bridge) Name() string { return b.name }

// WhoamiURL returns the absolute URL of the bridge's "who am I" endpoint:
// its upstream's URL joined with its path.
func (b *Bridge) WhoamiURL() string { return b.whoamiURL }

// Whoami is a monolith's "who am I" endpoint.
type Whoami struct {
	// Upstream is the upstream that answers. Empty means the monolith.
	Upstream string `yaml:"upstream"`
	// Path is the endpoint's path (with a query, if it needs one), joined
	// to the upstream's URL.
	Path string `yaml:"path" validate:"required"`
	// Method is GET or POST (with no body). Empty means GET.
	Method string `yaml:"method" validate:"omitempty,oneof=GET POST"`
	// Timeout bounds the call. Zero means 2s; at most 30s.
	Timeout Duration `yaml:"timeout" validate:"gte=0"`
}

// BridgeMapping locates the user's data in a "who am I" answer by JSON
// pointers (RFC 6901, e.g. /user/id).
type BridgeMapping struct {
	// UserID is the user's id: a string or an integer. Required.
	UserID string `yaml:"user_id" validate:"required"`
	// CustomerNumber is the customer number (string or integer). Empty
	// means none.
	CustomerNumber string `yaml:"customer_number"`
	// LoggedOn says whether the session is logged on. Nil means it is
	// when the user id is present and not null or "".
	LoggedOn *LoggedOn `yaml:"logged_on"`
	// Claims are further JWT claims: claim name → pointer to a string,
	// number or boolean. Absent or null values are left out.
	Claims map[string]string `yaml:"claims"`
}

// LoggedOn is where an answer says it is logged on: a boolean, or, with
// Equals, a value compared with it. In YAML, `logged_on: /pointer` is
// shorthand for {pointer: /pointer}.
type LoggedOn struct {
	Pointer string `yaml:"pointer" validate:"required"`
	// Equals, if set, is the value (string, number or boolean, written as
	// text) that means logged on; any other means not.
	Equals *string `yaml:"equals"`
}

// UnmarshalYAML reads {pointer: P, equals: V} or the shorthand P.
func (l *LoggedOn) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = LoggedOn{Pointer: n.Value}
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value != "pointer" && k.Value != "equals" {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found in mapping.logged_on (pointer, equals)", k.Line, k.Value)}}
			}
		}
		type plain LoggedOn // without this method
		return n.Decode((*plain)(l))
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: mapping.logged_on must be a JSON pointer or {pointer: P, equals: VALUE}", n.Line)}}
}

// Shadow copies a share of a route's requests to another upstream (a new
// service) after the primary answer went to the client, and compares the
// two answers. The client only ever gets the primary's answer.
type Shadow struct {
	// To is the upstream that gets the copies.
	To string `yaml:"to" validate:"required"`
	// Percent of the route's requests that are copied, 0 to 100.
	Percent int `yaml:"percent" validate:"gte=0,lte=100"`
	// Compare compares the answers (status, Headers, body) and keeps the
	// route's results. False sends the copies and discards their answers.
	Compare bool `yaml:"compare"`
	// UnsafeMethods also copies requests whose method is not GET, HEAD or
	// OPTIONS. Requests with a body are never copied.
	UnsafeMethods bool `yaml:"unsafe_methods"`
	// Headers are the response headers compared. Empty means Content-Type.
	Headers []string `yaml:"headers" validate:"dive,required"`
	// Ignore are places in JSON bodies never compared: JSON pointers
	// (RFC 6901) where a token * stands for any key or index, each
	// covering everything below it (e.g. /meta/time, /items/*/id).
	Ignore []string `yaml:"ignore" validate:"dive,required"`
	// Redact are places in JSON bodies (pointers as in Ignore) whose
	// values mismatch samples show as "[redacted]". With any set, samples
	// show non-JSON bodies by their hash only.
	Redact []string `yaml:"redact" validate:"dive,required"`
	// LearnNoise asks the primary a second time for each copied request
	// with a safe method; what differs between its two answers is ignored
	// from then on (Diffy's noise). It doubles the primary's load for the
	// copied share.
	LearnNoise bool `yaml:"learn_noise"`
	// MaxBody is the largest body compared in full (structurally for
	// JSON); larger bodies are compared by their SHA-256. Zero means 1MiB;
	// at most 16MiB.
	MaxBody ByteSize `yaml:"max_body" validate:"gte=0,lte=16777216"`
}

// Analysis is a route's canary analysis (strangler/analysis enforces
// it). Over a sliding window, counting only requests served since the
// route's weight last changed, the new side fails when its 5xx rate is
// above MaxErrorPercent or its p99 latency above MaxP99Ratio times the
// legacy side's, once it has served at least MinRequests; ficus then sets
// its weight to 0 in a revision of the rule store. While it passes, Steps
// raise the weight, one every Interval, except before a weight listed in
// HoldBefore, where a person resumes or aborts (ficus routes resume|abort).
// The route needs exactly one new upstream besides the monolith.
type Analysis struct {
	// Window is how far back the analysis looks. Zero means 1m; at least
	// 1s, at most 1h.
	Window Duration `yaml:"window" validate:"gte=0"`
	// MinRequests is how many requests the new side must have served in
	// the window before a verdict (fewer: "insufficient", nothing
	// happens). Zero means 100.
	MinRequests int `yaml:"min_requests" validate:"gte=0,lte=100000000"`
	// MaxErrorPercent is the highest share of the new side's answers that
	// may be 5xx, in percent (a client's fault, 4xx or 499, never counts).
	// Zero means 5.
	MaxErrorPercent float64 `yaml:"max_error_percent" validate:"gte=0,lte=100"`
	// MaxP99Ratio is how many times the legacy side's p99 latency the new
	// side's may reach; the rule applies only while the legacy side has
	// served MinRequests in the window too. Zero turns the latency rule off.
	MaxP99Ratio float64 `yaml:"max_p99_ratio" validate:"gte=0,lte=1000"`
	// Steps are the new side's weights, in percent, strictly increasing
	// (e.g. [5, 25, 50, 100]). A person starts the first (ficus routes
	// state ROUTE canary --percent 5); ficus raises the weight to the next
	// step above the live one. Empty means no steps: the analysis only
	// rolls back.
	Steps []int `yaml:"steps" validate:"dive,gte=1,lte=100"`
	// Interval is the least time a step is held, and passing, before the
	// next. Zero means Window.
	Interval Duration `yaml:"interval" validate:"gte=0"`
	// ParityMin is the shadow parity score (0..1) below which no step is
	// taken (the route holds for a person). Zero ignores parity.
	ParityMin float64 `yaml:"parity_min" validate:"gte=0,lte=1"`
	// HoldBefore are steps ficus does not take by itself: it holds before
	// them until a person runs ficus routes resume (or abort). Each must
	// be one of Steps other than the first.
	HoldBefore []int `yaml:"hold_before"`
}

// The defaults of an Analysis.
const (
	DefaultAnalysisWindow      = time.Minute
	DefaultAnalysisMinRequests = 100
	DefaultMaxErrorPercent     = 5.0
)

// WindowOrDefault is Window, or DefaultAnalysisWindow when zero.
func (a *Analysis) WindowOrDefault() time.Duration { return a.Window.Std(DefaultAnalysisWindow) }

// MinRequestsOrDefault is MinRequests, or DefaultAnalysisMinRequests when zero.
func (a *Analysis) MinRequestsOrDefault() int {
	if a.MinRequests == 0 {
		return DefaultAnalysisMinRequests
	}
	return a.MinRequests
}

// MaxErrorPercentOrDefault is MaxErrorPercent, or DefaultMaxErrorPercent when zero.
func (a *Analysis) MaxErrorPercentOrDefault() float64 {
	if a.MaxErrorPercent == 0 {
		return DefaultMaxErrorPercent
	}
	return a.MaxErrorPercent
}

// IntervalOrDefault is Interval, or the window when zero.
func (a *Analysis) IntervalOrDefault() time.Duration { return a.Interval.Std(a.WindowOrDefault()) }

// NextStep returns the first step above weight, and whether a person must
// resume before ficus takes it (HoldBefore); ok is false when no step is
// above weight.
func (a *Analysis) NextStep(weight int) (next int, hold, ok bool) {
	for _, s := range a.Steps {
		if s > weight {
			return s, slices.Contains(a.HoldBefore, s), true
		}
	}
	return 0, false, false
}

// StepIndex returns the 1-based position of weight in Steps, 0 when it is
// none of them.
func (a *Analysis) StepIndex(weight int) int {
	return slices.Index(a.Steps, weight) + 1
}

// NewUpstream returns the route's one target that is not the monolith
// (the side an analysis watches), or "" when it has none or several.
func (r *Route) NewUpstream(monolith string) string {
	var found string
	for _, t := range r.Targets() {
		if t == monolith {
			continue
		}
		if found != "" {
			return ""
		}
		found = t
	}
	return found
}

// Weight returns the share, in percent, the route gives upstream.
func (r *Route) Weight(upstream string) int { return weights(r)[upstream] }

// Compares reports whether the rule compares answers.
func (s *Shadow) Compares() bool { return s != nil && s.Compare }

// Duration is a time.Duration written as "10s" or "1m30s".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string. Its error is a
// *yaml.TypeError, so the decoder goes on and reports every bad value of
// a file, not only the first.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q (use e.g. 5s, 1m30s)", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size in bytes, written as a plain number (1048576) or with
// a unit: KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
type ByteSize int64

// UnmarshalYAML parses a size (go-humanize's ParseBytes). Its error is a
// *yaml.TypeError, like Duration's.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := humanize.ParseBytes(s)
	if err != nil || v > math.MaxInt64 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid size %q (use e.g. 1048576, 512KiB, 10MiB or 1MB)", n.Line, s)}}
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML writes the size in bytes.
func (b ByteSize) MarshalYAML() (any, error) { return int64(b), nil }

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Std returns d as a time.Duration, or def when d is zero.
func (d Duration) Std(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Targets returns the upstream names a route sends traffic to, in order.
func (r *Route) Targets() []string {
	if r.To != "" {
		return []string{r.To}
	}
	out := make([]string, 0, len(r.Split))
	for _, s := range r.Split {
		out = append(out, s.To)
	}
	return out
}

// Policy returns the route's auth policy name, passthrough when unset.
func (r *Route) Policy() string {
	if r.Auth == nil || r.Auth.Policy == "" {
		return "passthrough"
	}
	return r.Auth.Policy
}

// ResponsesRewritten reports whether responses of rewritten targets are
// rewritten.
func (rw *Rewrite) ResponsesRewritten() bool {
	return rw != nil && (rw.Responses == nil || *rw.Responses)
}
