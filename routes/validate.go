package routes

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
)

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	tokenRE   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	literalRE = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,=:@-]+$`)
	paramRE   = regexp.MustCompile(`^\{[A-Za-z_][A-Za-z0-9_]*\}$`)
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
		nameRule := func(fl validator.FieldLevel) bool { return nameRE.MatchString(fl.Field().String()) }
		_ = v.RegisterValidation("upstreamname", nameRule)
		_ = v.RegisterValidation("routename", nameRule)
		validate = v
	})
	return validate
}

var mapIndexRE = regexp.MustCompile(`^(upstreams|bridges)\[([^\]]*)\]`)

// fieldPath turns a validator namespace (File.upstreams[x].url) into our
// field path (upstreams.x.url).
func fieldPath(ns string) string {
	_, p, _ := strings.Cut(ns, ".")
	return mapIndexRE.ReplaceAllString(p, "$1.$2")
}

func ruleReason(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "eq":
		return fmt.Sprintf("must be %s", fe.Param())
	case "oneof":
		return fmt.Sprintf("must be one of: %s (got %q)", strings.ReplaceAll(fe.Param(), " ", ", "), fmt.Sprint(fe.Value()))
	case "gte":
		return fmt.Sprintf("must be at least %s", fe.Param())
	case "lte":
		return fmt.Sprintf("must be at most %s", fe.Param())
	case "min":
		return fmt.Sprintf("must have at least %s entries", fe.Param())
	case "url":
		return fmt.Sprintf("is not a valid URL: %q", fmt.Sprint(fe.Value()))
	case "hostname_rfc1123":
		return fmt.Sprintf("is not a valid host name: %q", fmt.Sprint(fe.Value()))
	case "upstreamname", "routename":
		return fmt.Sprintf("%q is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)", fmt.Sprint(fe.Value()))
	}
	return fmt.Sprintf("fails rule %q", fe.Tag())
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
	seen := map[string]int{}
	for i, r := range f.Routes {
		if r == nil {
			continue
		}
		p := fmt.Sprintf("routes[%d]", i)
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			errs = append(errs, f.errAt(p+".name", "duplicate route name %q (also routes[%d])", r.Name, j))
		} else {
			seen[r.Name] = i
		}
		errs = append(errs, f.checkRoute(p, r)...)
	}
	if len(errs) == 0 {
		if _, err := compile(f); err != nil {
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
	return nil
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
		case !tokenRE.MatchString(meth) || strings.ToUpper(meth) != meth:
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
		if s.Cookie != "" && !tokenRE.MatchString(s.Cookie) {
			add(".sticky.cookie", "invalid cookie name %q", s.Cookie)
		}
		checkHeader(".sticky.header", s.Header, add)
	}
	if o := r.Override; o != nil {
		if o.Header == "" && o.Cookie == "" {
			add(".override", "needs a header or a cookie")
		}
		checkHeader(".override.header", o.Header, add)
		if o.Cookie != "" && !tokenRE.MatchString(o.Cookie) {
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
		if a.Header != "" && !tokenRE.MatchString(a.Header) {
			add(".auth.header", "invalid header name %q", a.Header)
		}
		errs = append(errs, f.checkRouteBridge(p, a)...)
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
	return errs
}

// ReservedHeaderPrefix marks headers only ficus sets; clients' copies are
// removed before matching, so rules cannot read them.
const ReservedHeaderPrefix = "x-ficus-"

func checkHeader(field, name string, add func(field, format string, args ...any)) {
	switch {
	case name == "":
	case !tokenRE.MatchString(name):
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
	params := map[string]bool{}
	for i, seg := range strings.Split(strings.TrimSuffix(p[1:], "/"), "/") {
		switch {
		case seg == "":
			return fmt.Sprintf("%q has an empty segment (//)", p)
		case seg == "." || seg == "..":
			return fmt.Sprintf("%q has a dot segment", p)
		case strings.HasPrefix(seg, "{"):
			if !paramRE.MatchString(seg) {
				return fmt.Sprintf("segment %d %q: a parameter is a whole segment like {id}", i+1, seg)
			}
			if params[seg] {
				return fmt.Sprintf("parameter %s appears twice", seg)
			}
			params[seg] = true
		case !literalRE.MatchString(seg):
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
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return fmt.Sprintf("%q is not a JSON pointer: ~ must be followed by 0 or 1 (~0 is ~, ~1 is /)", p)
		}
	}
	return ""
}
