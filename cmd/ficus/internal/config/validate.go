package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/idp/legacy"
	"github.com/ficus-gw/ficus/routes"
	"github.com/go-playground/locales/en"
	ut "github.com/go-playground/universal-translator"
	"github.com/go-playground/validator/v10"
	entrans "github.com/go-playground/validator/v10/translations/en"
)

// Validate checks c for purpose p: the values and how they fit together,
// without looking outside c (no secret is read, no file is looked at, no
// adapter is built; Resolve does that). The error is an Errors value.
func (c *Config) Validate(p Purpose) error {
	if errs := c.validate(p); len(errs) > 0 {
		return errs
	}
	return nil
}

// validate reports every problem of c for purpose p, by key path.
func (c *Config) validate(p Purpose) Errors {
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, Error{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	v := structValidator()
	if err := v.v.Struct(c); err != nil {
		var ves validator.ValidationErrors
		if !errors.As(err, &ves) {
			return Errors{{Reason: err.Error()}}
		}
		for _, fe := range ves {
			_, field, _ := strings.Cut(fe.Namespace(), ".")
			add(field, "%s", v.reason(fe, field))
		}
	}
	if c.Listen.Addr == c.Listen.OpsAddr && !strings.HasSuffix(c.Listen.Addr, ":0") {
		add("listen.ops_addr", "must differ from listen.addr")
	}
	if c.Runtime.GOGC == -1 && c.Runtime.MemoryLimit <= 0 {
		add("runtime.gogc", "-1 (no collection by growth) needs runtime.memory_limit, or the heap has no bound")
	}
	if c.Runtime.MemoryLimit < 0 {
		add("runtime.memory_limit", "must not be negative")
	}
	if a := c.Admin.Listen; a != "" && !strings.HasSuffix(a, ":0") && (a == c.Listen.Addr || a == c.Listen.OpsAddr) {
		add("admin.listen", "must differ from listen.addr and listen.ops_addr")
	}
	for _, f := range [][2]string{{"admin.scope", c.Admin.Scope}, {"admin.read_scope", c.Admin.ReadScope}} {
		field, sc := f[0], f[1]
		if strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
			add(field, "must be one scope: printable ASCII without spaces, quotes or backslashes (got %q)", sc)
		}
	}
	if c.Admin.Listen == "" && c.Admin.TLS.CertFile != "" {
		add("admin.tls", "is for admin.listen (the admin API's own listener)")
	}
	c.validateTLS(add)

	names, paths := map[string]bool{}, map[string]bool{}
	for i, a := range c.Webhooks.Adapters {
		field := fmt.Sprintf("webhooks.adapters[%d]", i)
		if a.Name != "" && names[a.Name] {
			add(field+".name", "%s is used by another adapter", a.Name)
		}
		path := a.Path
		if strings.HasPrefix(path, "/") {
			n, err := routes.NormalizePath(path)
			if err != nil {
				add(field+".path", "%v", err)
			}
			path = n
		}
		if path != "" && paths[path] {
			add(field+".path", "%s is used by another adapter", path)
		}
		names[a.Name], paths[path] = true, true
	}

	apps := map[string]bool{}
	for i, a := range c.Mobile.Apps {
		if a.Name != "" && apps[a.Name] {
			add(fmt.Sprintf("mobile.apps[%d].name", i), "%s is used by another app", a.Name)
		}
		apps[a.Name] = true
	}
	// The mobile paths are checked here, with everything else, not when
	// the adapter is built at start.
	if _, err := routes.CompilePrefixes(c.Mobile.Paths); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			add("mobile.paths", "%s", line)
		}
	}
	switch l := c.IDP.LegacyLogin; {
	case l.HTTP != nil && l.Postgres != nil:
		add("idp.legacy_login", "set one of http and postgres, not both")
	case l.HTTP != nil:
		if _, err := legacy.NewHTTP(*l.HTTP); err != nil {
			addKeyed(add, "idp.legacy_login.http", err)
		}
	case l.Postgres != nil:
		if err := l.Postgres.SQL().Check(); err != nil {
			addKeyed(add, "idp.legacy_login.postgres", err)
		}
	case l.MaxConcurrent != 0:
		add("idp.legacy_login", "set http or postgres (max_concurrent alone does nothing)")
	}
	if fed := c.IDP.Federation; len(fed.Providers) > 0 || fed.LoginTTL != 0 || fed.StartsPerMinute != 0 {
		if err := fed.Validate(); err != nil {
			addKeyed(add, "idp.federation", err)
		}
		if !c.IDPEnabled() {
			add("idp.federation", "needs the IDP (idp.enabled)")
		}
		for i, pc := range fed.Providers {
			if pc.KeepUpstreamTokens && c.IDP.KeyEncryptionKey == "" {
				add(fmt.Sprintf("idp.federation.providers[%d].keep_upstream_tokens", i), "needs idp.key_encryption_key (the tokens are sealed with it)")
			}
		}
	}
	c.validateSessions(add)
	c.validateTracing(add)
	if why := issuerUnusable(c.IDP.Issuer); why != "" {
		add("idp.issuer", "names no address clients can use: %s (got %q)", why, c.IDP.Issuer)
	}

	if c.RoutesFromStore() {
		if c.Store.Driver != "postgres" {
			add("routes.source", "postgres needs store.driver: postgres")
		}
		if c.Routes.File != "" {
			add("routes.file", "is not read with routes.source postgres (store a file with ficus routes apply FILE)")
		}
		if c.Routes.Watch != nil {
			add("routes.watch", "is for routes.source file; with postgres every instance follows the live revision")
		}
	} else if c.Routes.PollInterval != 0 {
		add("routes.poll_interval", "is for routes.source postgres")
	}

	if p < ForServe {
		return errs
	}
	if c.Routes.File == "" && !c.RoutesFromStore() {
		add("routes.file", "is required")
	}
	if c.IDPEnabled() && c.IDP.Issuer == "" {
		if why := defaultIssuerWrong(c.Listen); why != "" {
			add("idp.issuer", "is required: %s; set the public URL clients use, e.g. https://login.example.com", why)
		}
	}
	return errs
}

// validateTLS checks the listeners' TLS policies and how the TLS keys fit
// together.
func (c *Config) validateTLS(add func(field, format string, args ...any)) {
	for _, l := range []struct {
		key string
		tls TLS
	}{{"listen.tls", c.Listen.TLS}, {"admin.tls", c.Admin.TLS}} {
		if err := l.tls.Policy().Check(); err != nil {
			addKeyed(add, l.key, err)
		}
		if l.tls.CertFile == "" && (l.tls.MinVersion != "" || len(l.tls.CipherSuites) > 0) {
			add(l.key, "min_version and cipher_suites are for a listener with cert_file and key_file")
		}
	}
	tlsOn := c.Listen.TLS.CertFile != ""
	if c.Listen.H2C && tlsOn {
		add("listen.h2c", "is for a front door without listen.tls (over TLS, HTTP/2 is offered by ALPN)")
	}
	if r := c.Listen.RedirectHTTP; r != "" {
		switch {
		case !tlsOn:
			add("listen.redirect_http", "redirects to https: it needs listen.tls")
		case !strings.HasSuffix(r, ":0") && (r == c.Listen.Addr || r == c.Listen.OpsAddr || r == c.Admin.Listen):
			add("listen.redirect_http", "must differ from listen.addr, listen.ops_addr and admin.listen")
		}
	}
	if r := c.Gateway.RemoteIDP; r.TLS != (ClientTLS{}) {
		switch {
		case r.Issuer == "":
			add("gateway.remote_idp.tls", "is for gateway.remote_idp.issuer")
		case !strings.HasPrefix(r.Issuer, "https://"):
			add("gateway.remote_idp.tls", "is for an https:// issuer (got %q)", r.Issuer)
		}
	}
}

// addKeyed adds each line of err, "key: reason", as a problem of the key
// under parent (so it is reported on the key's line).
func addKeyed(add func(field, format string, args ...any), parent string, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		key, reason, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(key, " ,") {
			add(parent, "%s", line)
			continue
		}
		add(parent+"."+key, "%s", reason)
	}
}

// defaultIssuerWrong says why http://<listen.addr> cannot be the issuer,
// or "" when it can.
func defaultIssuerWrong(l Listen) string {
	host, port, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return "" // listen.addr itself is reported
	}
	switch {
	case l.TLS.CertFile != "" || l.TLS.KeyFile != "":
		return fmt.Sprintf("the default, http://%s, is plain http while listen.tls serves https", l.Addr)
	case port == "0":
		return fmt.Sprintf("the default, http://%s, has port 0, which is no address clients can use", l.Addr)
	case host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified():
		return fmt.Sprintf("the default, http://%s, names every interface, which is no address clients can use", l.Addr)
	}
	return ""
}

// issuerUnusable says why an issuer written in the file cannot be reached
// by clients (every interface, port 0), or "" when it can or is not an
// http(s) URL at all (reported by its format check).
func issuerUnusable(issuer string) string {
	u, err := url.Parse(issuer)
	if issuer == "" || err != nil || u.Host == "" {
		return ""
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		return "its host is every interface"
	}
	if u.Port() == "0" {
		return "its port is 0"
	}
	return ""
}

type structCheck struct {
	v     *validator.Validate
	trans ut.Translator
}

// structValidator is go-playground/validator with the config's own checks
// and its English messages, built once.
var structValidator = sync.OnceValue(func() structCheck {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		k, _ := yamlKey(f)
		return k
	})
	_ = v.RegisterValidation("listenaddr", func(fl validator.FieldLevel) bool {
		_, port, err := net.SplitHostPort(fl.Field().String())
		if err != nil {
			return false
		}
		n, err := strconv.Atoi(port)
		return err == nil && n >= 0 && n <= 65535
	})
	_ = v.RegisterValidation("httpurl", func(fl validator.FieldLevel) bool {
		u, err := url.Parse(fl.Field().String())
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
			u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
	})
	english := en.New()
	trans, _ := ut.New(english, english).GetTranslator("en")
	_ = entrans.RegisterDefaultTranslations(v, trans)
	return structCheck{v: v, trans: trans}
})

// reason is a field error in words, without Go names: the other fields it
// mentions are named by their keys.
func (s structCheck) reason(fe validator.FieldError, field string) string {
	got := shown(fe.Value())
	switch fe.Tag() {
	case "required":
		return "is required"
	case "required_if":
		other, value, _ := strings.Cut(fe.Param(), " ")
		return fmt.Sprintf("is required when %s is %s", sibling(field, other), value)
	case "required_with":
		return fmt.Sprintf("is required when %s is set", sibling(field, fe.Param()))
	case "oneof":
		return fmt.Sprintf("must be one of %s (got %s)", strings.ReplaceAll(fe.Param(), " ", ", "), got)
	case "listenaddr":
		return fmt.Sprintf("must be host:port (got %s)", got)
	case "cidr|ip":
		return fmt.Sprintf("must be a CIDR or an IP address (got %s)", got)
	case "httpurl":
		return fmt.Sprintf("must be an http:// or https:// URL with a host and no query (got %s)", got)
	case "gte", "min":
		if fe.Param() == "0" {
			return fmt.Sprintf("must not be negative (got %s)", got)
		}
		return fmt.Sprintf("must be at least %s (got %s)", fe.Param(), got)
	case "lte", "max":
		return fmt.Sprintf("must be at most %s (got %s)", fe.Param(), got)
	}
	msg := fe.Translate(s.trans)
	return strings.TrimPrefix(msg, fe.Field()+" ")
}

// sibling names, by its key, the field goName next to the failing field.
func sibling(field, goName string) string {
	parent := field[:max(strings.LastIndexByte(field, '.'), 0)]
	if t := typeAt(parent); t != nil && t.Kind() == reflect.Struct {
		if f, ok := t.FieldByName(goName); ok {
			if k, _ := yamlKey(f); k != "" {
				return joinPath(parent, k)
			}
		}
	}
	return strings.ToLower(goName)
}

// shown is a value as a person wrote it.
func shown(v any) string {
	switch v := v.(type) {
	case routes.Duration:
		return time.Duration(v).String()
	case time.Duration:
		return v.String()
	case string:
		return strconv.Quote(v)
	}
	return fmt.Sprint(v)
}
