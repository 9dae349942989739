package routes

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"
)

var (
	validateOnce sync.Once
	validate     *validator.Validate
)

func fieldRules() *validator.Validate {
	validateOnce.Do(func() {
		v := validator.New(validator.WithRequiredStructEnabled())
		v.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				return ""
			}
			return name
		})
		nameRule := func(fl validator.FieldLevel) bool { return validName(fl.Field().String()) }
		_ = v.RegisterValidation("upstreamname", nameRule)
		_ = v.RegisterValidation("routename", nameRule)
		validate = v
	})
	return validate
}

var mapIndexRE = regexp.MustCompile(`^(upstreams|bridges|rate_limits)\[([^\]]*)\]`)

// fieldPath turns a validator namespace (File.upstreams[x].url) into our
// field path (upstreams.x.url).
func fieldPath(ns string) string {
	_, p, _ := strings.Cut(ns, ".")
	return mapIndexRE.ReplaceAllString(p, "$1.$2")
}

func ruleReason(fe validator.FieldError) string {
	return reasonFor(fe.Tag(), fe.Param(), fe.Value())
}

// reasonFor words the failure of a field rule (a validate tag with its
// parameter) for value.
func reasonFor(tag, param string, value any) string {
	switch tag {
	case "required":
		return "is required"
	case "eq":
		return fmt.Sprintf("must be %s", param)
	case "oneof":
		return fmt.Sprintf("must be one of: %s (got %q)", strings.ReplaceAll(param, " ", ", "), fmt.Sprint(value))
	case "gte":
		return fmt.Sprintf("must be at least %s", param)
	case "lte":
		return fmt.Sprintf("must be at most %s", param)
	case "min":
		return fmt.Sprintf("must have at least %s entries", param)
	case "url":
		return fmt.Sprintf("is not a valid URL: %q", fmt.Sprint(value))
	case "required_with":
		return fmt.Sprintf("is required with %s", snakeCase(param))
	case "hostname_rfc1123":
		return fmt.Sprintf("is not a valid host name: %q", fmt.Sprint(value))
	case "upstreamname", "routename":
		return fmt.Sprintf("%q is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)", fmt.Sprint(value))
	}
	return fmt.Sprintf("fails rule %q", tag)
}

// snakeCase is a Go field name as its yaml key: KeyFile is key_file.
func snakeCase(goName string) string {
	var b strings.Builder
	for i, r := range goName {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// The values of the oneof rules of routes (the validate tags of Auth).
var (
	policies = oneOf("passthrough oauth2 optional jwt session bridge")
	levels   = oneOf("anonymous returning logged_on")
	// metricsModes are the values of Route.Metrics.
	metricsModes = oneOf("on off")
)

type oneof struct {
	param string
	in    map[string]bool
}

func oneOf(param string) oneof {
	o := oneof{param: param, in: map[string]bool{}}
	for _, v := range strings.Fields(param) {
		o.in[v] = true
	}
	return o
}

// routeRules applies the field rules of one route, the validate tags of
// Route and of the types under it, by hand and in their field order:
// go-playground/validator's reflection over thousands of routes cost
// more than all the other checks together. The tags stay on the types as
// the statement of the rules; TestRouteRulesMatchTheTags holds the two
// equal. p is the route's path (routes[3]).
func (f *File) routeRules(p string, r *Route) Errors {
	var errs Errors
	fail := func(field, tag, param string, value any) {
		errs = append(errs, f.errAt(p+field, "%s", reasonFor(tag, param, value)))
	}
	required := func(field, v string) bool {
		if v == "" {
			fail(field, "required", "", v)
			return false
		}
		return true
	}
	within := func(field string, v, lo, hi int) {
		switch {
		case v < lo:
			fail(field, "gte", strconv.Itoa(lo), v)
		case v > hi:
			fail(field, "lte", strconv.Itoa(hi), v)
		}
	}
	each := func(field string, vs []string, check func(field, v string)) {
		for i, v := range vs {
			check(field+"["+strconv.Itoa(i)+"]", v)
		}
	}
	if required(".name", r.Name) && !validName(r.Name) {
		fail(".name", "routename", "", r.Name)
	}
	m := &r.Match
	if m.Host != "" && fieldRules().Var(m.Host, "hostname_rfc1123") != nil {
		fail(".match.host", "hostname_rfc1123", "", m.Host)
	}
	each(".match.methods", m.Methods, func(field, v string) { required(field, v) })
	if m.Header != nil {
		required(".match.header.name", m.Header.Name)
	}
	if r.Split != nil && len(r.Split) == 0 { // omitempty,min=1: validator sees split: [] as set
		fail(".split", "min", "1", r.Split)
	}
	for i, s := range r.Split {
		field := ".split[" + strconv.Itoa(i) + "]"
		required(field+".to", s.To)
		within(field+".weight", s.Weight, 0, 100)
	}
	if s := r.Sticky; s != nil && s.MaxAge < 0 {
		fail(".sticky.max_age", "gte", "0", s.MaxAge)
	}
	if a := r.Auth; a != nil {
		if required(".auth.policy", a.Policy) && !policies.in[a.Policy] {
			fail(".auth.policy", "oneof", policies.param, a.Policy)
		}
		each(".auth.scopes_all", a.ScopesAll, func(field, v string) { required(field, v) })
		each(".auth.scopes_any", a.ScopesAny, func(field, v string) { required(field, v) })
		each(".auth.levels", a.Levels, func(field, v string) {
			if !levels.in[v] {
				fail(field, "oneof", levels.param, v)
			}
		})
	}
	if s := r.Shadow; s != nil {
		required(".shadow.to", s.To)
		within(".shadow.percent", s.Percent, 0, 100)
		each(".shadow.headers", s.Headers, func(field, v string) { required(field, v) })
		each(".shadow.ignore", s.Ignore, func(field, v string) { required(field, v) })
		each(".shadow.redact", s.Redact, func(field, v string) { required(field, v) })
		switch {
		case s.MaxBody < 0:
			fail(".shadow.max_body", "gte", "0", s.MaxBody)
		case s.MaxBody > 16777216:
			fail(".shadow.max_body", "lte", "16777216", s.MaxBody)
		}
	}
	if a := r.Analysis; a != nil {
		withinF := func(field string, v, lo, hi float64, los, his string) {
			switch {
			case v < lo:
				fail(field, "gte", los, v)
			case v > hi:
				fail(field, "lte", his, v)
			}
		}
		if a.Window < 0 {
			fail(".analysis.window", "gte", "0", a.Window)
		}
		within(".analysis.min_requests", a.MinRequests, 0, 100000000)
		withinF(".analysis.max_error_percent", a.MaxErrorPercent, 0, 100, "0", "100")
		withinF(".analysis.max_p99_ratio", a.MaxP99Ratio, 0, 1000, "0", "1000")
		for i, st := range a.Steps {
			within(".analysis.steps["+strconv.Itoa(i)+"]", st, 1, 100)
		}
		if a.Interval < 0 {
			fail(".analysis.interval", "gte", "0", a.Interval)
		}
		withinF(".analysis.parity_min", a.ParityMin, 0, 1, "0", "1")
	}
	if r.Metrics != "" && !metricsModes.in[r.Metrics] {
		fail(".metrics", "oneof", metricsModes.param, r.Metrics)
	}
	if r.MetricsGroup != "" && !validName(r.MetricsGroup) {
		fail(".metrics_group", "routename", "", r.MetricsGroup)
	}
	if l := r.RateLimit; l != nil {
		rateLimitRules(".rate_limit", l, fail, within)
	}
	return errs
}

// validate checks the whole file and returns every problem.
func (f *File) validate() Errors {
	var errs Errors
	if err := fieldRules().Struct(f); err != nil {
		var ves validator.ValidationErrors
		if !errors.As(err, &ves) {
			return Errors{{File: f.Name, Reason: err.Error()}}
		}
		for _, fe := range ves {
			errs = append(errs, f.errAt(fieldPath(fe.Namespace()), "%s", ruleReason(fe)))
		}
	}
	// The routes' field rules, in the place of validator's Routes.
	routePaths := make([]string, len(f.Routes))
	for i, r := range f.Routes {
		routePaths[i] = "routes[" + strconv.Itoa(i) + "]"
		if r == nil {
			errs = append(errs, f.errAt(routePaths[i], "%s", reasonFor("required", "", r)))
			continue
		}
		errs = append(errs, f.routeRules(routePaths[i], r)...)
	}
	if f.Monolith != "" && f.Upstreams[f.Monolith] == nil {
		errs = append(errs, f.errAt("monolith", "unknown upstream %q", f.Monolith))
	}
	for _, name := range sortedKeys(f.Upstreams) {
		if u := f.Upstreams[name]; u != nil {
			errs = append(errs, f.checkUpstream(name, u)...)
		}
	}
	for _, name := range sortedKeys(f.Bridges) {
		if b := f.Bridges[name]; b != nil {
			errs = append(errs, f.checkBridge(name, b)...)
		}
	}
	for _, name := range sortedKeys(f.RateLimits) {
		if l := f.RateLimits[name]; l != nil {
			l.name = name
			errs = append(errs, f.checkRateLimit("rate_limits."+name, l, true)...)
		}
	}
	seen := make(map[string]int, len(f.Routes))
	for i, r := range f.Routes {
		if r == nil {
			continue
		}
		p := routePaths[i]
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			errs = append(errs, f.errAt(p+".name", "duplicate route name %q (also routes[%d])", r.Name, j))
		} else {
			seen[r.Name] = i
		}
		errs = append(errs, f.checkRoute(p, r)...)
	}
	if len(errs) == 0 {
		m, err := compile(f)
		if err == nil {
			f.matcher, f.routes = m, f.Routes
		} else {
			var ce Errors
			if errors.As(err, &ce) {
				errs = append(errs, ce...)
			} else {
				errs = append(errs, &Error{File: f.Name, Reason: err.Error()})
			}
		}
	}
	return errs
}

func (f *File) checkUpstream(name string, u *Upstream) Errors {
	p := "upstreams." + name
	if u.URL == "" {
		return nil
	}
	pu, err := url.Parse(u.URL)
	switch {
	case err != nil:
		return Errors{f.errAt(p+".url", "invalid URL: %v", err)}
	case pu.Scheme != "http" && pu.Scheme != "https":
		return Errors{f.errAt(p+".url", "scheme must be http or https, not %q", pu.Scheme)}
	case pu.Host == "":
		return Errors{f.errAt(p+".url", "URL has no host")}
	case pu.User != nil:
		return Errors{f.errAt(p+".url", "URL must not carry credentials")}
	case pu.RawQuery != "" || pu.Fragment != "":
		return Errors{f.errAt(p+".url", "URL must not have a query or fragment")}
	}
	t := u.TLS
	if t == nil {
		return nil
	}
	if pu.Scheme != "https" {
		return Errors{f.errAt(p+".tls", "is for an https upstream (url is %s)", u.URL)}
	}
	var errs Errors
	for _, fp := range []struct{ key, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if fp.path != "" && !filepath.IsAbs(fp.path) {
			errs = append(errs, f.errAt(p+".tls."+fp.key, "must be an absolute path (got %q): the rules may be served from another directory", fp.path))
		}
	}
	return errs
}

func (f *File) checkRoute(p string, r *Route) Errors {
	var errs Errors
	add := func(field, format string, args ...any) { errs = append(errs, f.errAt(p+field, format, args...)) }

	m := r.Match
	switch {
	case m.Path == "" && m.Prefix == "":
		add(".match", "needs a path or a prefix")
	case m.Path != "" && m.Prefix != "":
		add(".match.prefix", "path and prefix are exclusive")
	case m.Path != "":
		if reason := checkPattern(m.Path); reason != "" {
			add(".match.path", "%s", reason)
		}
	default:
		if reason := checkPattern(m.Prefix); reason != "" {
			add(".match.prefix", "%s", reason)
		}
	}
	methods := map[string]bool{}
	for i, meth := range m.Methods {
		switch {
		case !isToken(meth) || strings.ToUpper(meth) != meth:
			add(fmt.Sprintf(".match.methods[%d]", i), "method %q must be an upper-case token", meth)
		case methods[meth]:
			add(fmt.Sprintf(".match.methods[%d]", i), "duplicate method %q", meth)
		}
		methods[meth] = true
	}
	if h := m.Header; h != nil {
		checkHeader(".match.header.name", h.Name, add)
	}

	known := func(field, name string) {
		if name != "" && f.Upstreams[name] == nil {
			add(field, "unknown upstream %q", name)
		}
	}
	switch {
	case r.To == "" && len(r.Split) == 0:
		add("", "needs a target: to or split")
	case r.To != "" && len(r.Split) > 0:
		add(".split", "to and split are exclusive")
	case r.To != "":
		known(".to", r.To)
	default:
		sum, targets := 0, map[string]bool{}
		for i, s := range r.Split {
			known(fmt.Sprintf(".split[%d].to", i), s.To)
			if targets[s.To] {
				add(fmt.Sprintf(".split[%d].to", i), "upstream %q appears twice in the split", s.To)
			}
			targets[s.To] = true
			sum += s.Weight
		}
		if sum != 100 {
			add(".split", "weights sum to %d, not 100", sum)
		}
	}

	if s := r.Sticky; s != nil {
		n := 0
		for _, v := range []string{s.Cookie, s.Header, s.Claim} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			add(".sticky", "needs exactly one of cookie, header, claim")
		}
		if len(r.Split) == 0 {
			add(".sticky", "sticky has no effect without a split")
		}
		if s.Cookie != "" && !isToken(s.Cookie) {
			add(".sticky.cookie", "invalid cookie name %q", s.Cookie)
		}
		checkHeader(".sticky.header", s.Header, add)
	}
	if o := r.Override; o != nil {
		if o.Header == "" && o.Cookie == "" {
			add(".override", "needs a header or a cookie")
		}
		checkHeader(".override.header", o.Header, add)
		if o.Cookie != "" && !isToken(o.Cookie) {
			add(".override.cookie", "invalid cookie name %q", o.Cookie)
		}
	}
	if rw := r.Rewrite; rw != nil {
		if rw.StripPrefix != "" {
			if reason := checkLiteralPrefix(rw.StripPrefix); reason != "" {
				add(".rewrite.strip_prefix", "%s", reason)
			} else if base := matchBase(m); base != "" && !hasSegmentPrefix(strings.ToLower(base), strings.ToLower(rw.StripPrefix)) {
				add(".rewrite.strip_prefix", "%q is not a prefix of the route's match %q, so it would never apply", rw.StripPrefix, base)
			}
		}
		if rw.AddPrefix != "" {
			if reason := checkLiteralPrefix(rw.AddPrefix); reason != "" {
				add(".rewrite.add_prefix", "%s", reason)
			}
		}
	}
	if a := r.Auth; a != nil {
		if a.Policy == "passthrough" && (len(a.ScopesAll)+len(a.ScopesAny)+len(a.Levels) > 0) {
			add(".auth", "scopes and levels need policy oauth2, optional, jwt or session")
		}
		if a.Policy == "session" {
			// A web session carries no scopes and no OAuth2 client, and its
			// headers to the web app are the process's (sessions.headers).
			if len(a.ScopesAll)+len(a.ScopesAny) > 0 {
				add(".auth", "policy session has no scopes (a browser session is not an OAuth2 token); use levels")
			}
			if a.Client != "" {
				add(".auth.client", "policy session takes no client (that is for policy optional)")
			}
			if a.Header != "" {
				add(".auth.header", "policy session sends the user context and the JPT in the headers set by sessions.headers in the process configuration, not in auth.header")
			}
		}
		if a.Policy == "optional" && a.Client == "" {
			add(".auth.client", "policy optional needs the client whose token anonymous callers get")
		}
		if a.Header != "" && !isToken(a.Header) {
			add(".auth.header", "invalid header name %q", a.Header)
		}
		errs = append(errs, f.checkRouteBridge(p, a)...)
	}
	if a := r.Analysis; a != nil {
		f.checkAnalysis(r, a, add)
	}
	if s := r.Shadow; s != nil {
		known(".shadow.to", s.To)
		for _, t := range r.Targets() {
			if t == s.To && len(r.Split) == 0 {
				add(".shadow.to", "shadow target %q is already the route's target", s.To)
			}
		}
		errs = append(errs, f.checkShadow(p+".shadow", s)...)
	}
	if r.Metrics == "off" && r.MetricsGroup != "" {
		add(".metrics_group", "metrics: off and metrics_group are exclusive (a group's routes have metrics)")
	}
	if r.RateLimit != nil {
		errs = append(errs, f.checkRouteLimit(p, r)...)
	}
	return errs
}

// ReservedHeaderPrefix marks headers only ficus sets; clients' copies are
// removed before matching, so rules cannot read them.
const ReservedHeaderPrefix = "x-ficus-"

func checkHeader(field, name string, add func(field, format string, args ...any)) {
	switch {
	case name == "":
	case !isToken(name):
		add(field, "invalid header name %q", name)
	case strings.HasPrefix(strings.ToLower(name), ReservedHeaderPrefix):
		add(field, "%q: X-Ficus-* headers are reserved for ficus and removed from client requests", name)
	}
}

// checkPattern checks a match path or prefix.
func checkPattern(p string) string {
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("%q must start with /", p)
	}
	if p == "/" {
		return ""
	}
	var params map[string]bool // made at the first {parameter}
	for i, seg := range strings.Split(strings.TrimSuffix(p[1:], "/"), "/") {
		switch {
		case seg == "":
			return fmt.Sprintf("%q has an empty segment (//)", p)
		case seg == "." || seg == "..":
			return fmt.Sprintf("%q has a dot segment", p)
		case strings.HasPrefix(seg, "{"):
			if !isParam(seg) {
				return fmt.Sprintf("segment %d %q: a parameter is a whole segment like {id}", i+1, seg)
			}
			if params == nil {
				params = map[string]bool{}
			}
			if params[seg] {
				return fmt.Sprintf("parameter %s appears twice", seg)
			}
			params[seg] = true
		case !isLiteral(seg):
			return fmt.Sprintf("segment %d %q has characters outside A-Z a-z 0-9 . _ ~ ! $ & ' ( ) * + , = : @ -", i+1, seg)
		}
	}
	return ""
}

func checkLiteralPrefix(p string) string {
	if reason := checkPattern(p); reason != "" {
		return reason
	}
	if strings.Contains(p, "{") {
		return fmt.Sprintf("%q must be literal (no {parameters})", p)
	}
	return ""
}

func matchBase(m Match) string {
	if m.Prefix != "" {
		return m.Prefix
	}
	return m.Path
}

// hasSegmentPrefix reports whether prefix is p or a leading run of p's
// segments.
func hasSegmentPrefix(p, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// checkAnalysis checks a route's analysis rule: one new upstream to
// watch, a window within bounds, increasing steps, holds among them.
func (f *File) checkAnalysis(r *Route, a *Analysis, add func(field, format string, args ...any)) {
	if f.Monolith != "" && r.NewUpstream(f.Monolith) == "" {
		add(".analysis", "an analysis needs the route to have exactly one new upstream besides the monolith %s (to: or a two-way split)", f.Monolith)
	}
	if w := time.Duration(a.Window); w != 0 && (w < time.Second || w > time.Hour) {
		add(".analysis.window", "must be between 1s and 1h (got %s)", w)
	}
	for i, s := range a.Steps {
		if i > 0 && s <= a.Steps[i-1] {
			add(fmt.Sprintf(".analysis.steps[%d]", i), "steps must increase strictly (%d after %d)", s, a.Steps[i-1])
		}
	}
	for i, h := range a.HoldBefore {
		if j := slices.Index(a.Steps, h); j < 1 {
			add(fmt.Sprintf(".analysis.hold_before[%d]", i), "%d is not one of the steps after the first %v (a person starts the first step)", h, a.Steps)
		}
	}
	if len(a.HoldBefore) > 0 && len(a.Steps) == 0 {
		add(".analysis.hold_before", "needs steps")
	}
}

// checkShadow checks a shadow rule's comparison settings.
func (f *File) checkShadow(p string, s *Shadow) Errors {
	var errs Errors
	add := func(field, format string, args ...any) { errs = append(errs, f.errAt(p+field, format, args...)) }
	if !s.Compare && (len(s.Headers)+len(s.Ignore)+len(s.Redact) > 0 || s.LearnNoise || s.MaxBody != 0) {
		add(".compare", "headers, ignore, redact, learn_noise and max_body need compare: true")
	}
	for i, h := range s.Headers {
		checkHeader(fmt.Sprintf(".headers[%d]", i), h, add)
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"ignore", s.Ignore}, {"redact", s.Redact}} {
		for i, ptr := range l.list {
			if reason := checkPointer(ptr); reason != "" {
				add(fmt.Sprintf(".%s[%d]", l.name, i), "%s", reason)
			}
		}
	}
	return errs
}

// checkPointer checks a JSON pointer (RFC 6901) of a shadow rule: it
// starts with / and every ~ is followed by 0 or 1. A token * stands for
// any key or index.
func checkPointer(p string) string {
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("%q is not a JSON pointer: it must start with / (e.g. /meta/time, /items/*/id)", p)
	}
	return checkJSONPointer(p)
}
