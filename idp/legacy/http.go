package legacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/routes"
)

// HTTPConfig is a monolith login endpoint that ficus posts credentials to.
// The endpoint must accept a POST without a session or CSRF token (a
// dedicated internal endpoint is best).
type HTTPConfig struct {
	// URL receives the POST. Required; http or https.
	URL string `yaml:"url"`
	// Body is form (application/x-www-form-urlencoded, the default) or
	// json (an object of the two fields).
	Body string `yaml:"body"`
	// UsernameField and PasswordField name the fields. Default username
	// and password.
	UsernameField string `yaml:"username_field"`
	PasswordField string `yaml:"password_field"`
	// Success is status (the default: a 2xx answer means the credentials
	// are right) or redirect (a 3xx answer whose Location, resolved
	// against URL, starts with SuccessRedirect means they are right, as
	// with the form logins of older Java and PHP apps). Redirects are
	// never followed.
	Success string `yaml:"success"`
	// SuccessRedirect is the URL prefix (absolute, or a path on URL's
	// host) of a successful login's redirect. Required for redirect.
	SuccessRedirect string `yaml:"success_redirect"`
	// Timeout bounds one check. Default 5s.
	Timeout routes.Duration `yaml:"timeout"`
	// MaxResponse bounds the answer's body that is read. Default 64KiB.
	MaxResponse routes.ByteSize `yaml:"max_response"`
	// UserID, Username and CustomerNumber are JSON pointers (RFC 6901)
	// into a 2xx JSON answer (success: status only): the monolith's user
	// id, its spelling of the username, the customer number. Each one set
	// must be there (a string or a number), else the answer is an error.
	UserID         string `yaml:"user_id"`
	Username       string `yaml:"username"`
	CustomerNumber string `yaml:"customer_number"`
	// Claims maps profile claim names to JSON pointers into the answer;
	// a claim whose pointer finds nothing is left out.
	Claims map[string]string `yaml:"claims"`
}

// HTTP checks credentials against a monolith login endpoint. Safe for
// concurrent use.
type HTTP struct {
	cfg      HTTPConfig
	url      *url.URL
	redirect string // SuccessRedirect, absolute
	timeout  time.Duration
	max      int64
	id       routes.JSONPointer
	name     routes.JSONPointer
	customer routes.JSONPointer
	claims   map[string]routes.JSONPointer
	client   *http.Client
}

var _ idp.LegacyUsers = (*HTTP)(nil)

// NewHTTP checks c and returns its checker. The error lists every
// problem, one a line, each starting with the key it is about.
func NewHTTP(c HTTPConfig) (*HTTP, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	h := &HTTP{cfg: c, timeout: c.Timeout.Std(5 * time.Second), max: int64(c.MaxResponse), claims: map[string]routes.JSONPointer{}}
	if h.max == 0 {
		h.max = 64 << 10
	}
	if h.cfg.UsernameField == "" {
		h.cfg.UsernameField = "username"
	}
	if h.cfg.PasswordField == "" {
		h.cfg.PasswordField = "password"
	}
	if h.cfg.UsernameField == h.cfg.PasswordField {
		bad("password_field: must differ from username_field (both %q)", h.cfg.UsernameField)
	}
	switch c.Body {
	case "", "form", "json":
	default:
		bad("body: must be form or json (got %q)", c.Body)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		bad("url: must be an http:// or https:// URL with a host (got %q)", c.URL)
	} else {
		h.url = u
	}
	switch c.Success {
	case "", "status":
		if c.SuccessRedirect != "" {
			bad("success_redirect: is only used with success: redirect")
		}
	case "redirect":
		r, err := url.Parse(c.SuccessRedirect)
		switch {
		case c.SuccessRedirect == "":
			bad("success_redirect: is required with success: redirect")
		case err != nil || (r.Scheme == "" && !strings.HasPrefix(c.SuccessRedirect, "/")) || r.Fragment != "":
			bad("success_redirect: must be an absolute URL or a path starting with / (got %q)", c.SuccessRedirect)
		case h.url != nil:
			h.redirect = h.url.ResolveReference(r).String()
		}
		if c.UserID != "" || c.Username != "" || c.CustomerNumber != "" || len(c.Claims) > 0 {
			bad("success: redirect answers have no JSON to read user_id, username, customer_number or claims from")
		}
	default:
		bad("success: must be status or redirect (got %q)", c.Success)
	}
	ptr := func(key, s string) routes.JSONPointer {
		if s == "" {
			return nil
		}
		p, err := routes.ParseJSONPointer(s)
		if err != nil {
			bad("%s: %v", key, err)
		}
		return p
	}
	h.id, h.name, h.customer = ptr("user_id", c.UserID), ptr("username", c.Username), ptr("customer_number", c.CustomerNumber)
	names := make([]string, 0, len(c.Claims))
	for k := range c.Claims {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "" {
			bad("claims: a claim name is empty")
			continue
		}
		if p := ptr("claims."+k, c.Claims[k]); p != nil {
			h.claims[k] = p
		}
	}
	if c.Timeout < 0 {
		bad("timeout: must not be negative")
	}
	if c.MaxResponse < 0 {
		bad("max_response: must not be negative")
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = h.timeout
	h.client = &http.Client{Transport: tr, Timeout: h.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h, nil
}

// CheckLegacy implements idp.LegacyUsers: one POST, within Timeout and
// ctx, its redirect not followed.
func (h *HTTP) CheckLegacy(ctx context.Context, username, password string) (*idp.LegacyUser, error) {
	var body []byte
	ctype := "application/x-www-form-urlencoded"
	if h.cfg.Body == "json" {
		body, _ = json.Marshal(map[string]string{h.cfg.UsernameField: username, h.cfg.PasswordField: password})
		ctype = "application/json"
	} else {
		body = []byte(url.Values{h.cfg.UsernameField: {username}, h.cfg.PasswordField: {password}}.Encode())
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("legacy login: %w", err)
	}
	req.Header.Set("Content-Type", ctype)
	if h.cfg.Success != "redirect" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", "ficus-legacy-login")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("legacy login: %s: %w", h.url.Redacted(), errors.Unwrap(err)) // the *url.Error repeats the URL
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, h.max+1))
	if err != nil {
		return nil, fmt.Errorf("legacy login: reading the answer: %w", err)
	}
	if int64(len(b)) > h.max {
		return nil, fmt.Errorf("legacy login: the answer is over %d bytes (max_response)", h.max)
	}
	code := resp.StatusCode
	if h.cfg.Success == "redirect" {
		switch {
		case code >= 300 && code < 400:
			loc, err := resp.Location()
			if err == nil && strings.HasPrefix(loc.String(), h.redirect) {
				return &idp.LegacyUser{}, nil
			}
			return nil, fmt.Errorf("%w: redirected elsewhere than success_redirect", idp.ErrLegacyDenied)
		case code >= 200 && code < 300, denied(code):
			return nil, fmt.Errorf("%w: status %d", idp.ErrLegacyDenied, code)
		}
		return nil, fmt.Errorf("legacy login: unexpected status %d", code)
	}
	switch {
	case code >= 200 && code < 300:
		return h.user(b)
	case denied(code):
		return nil, fmt.Errorf("%w: status %d", idp.ErrLegacyDenied, code)
	}
	return nil, fmt.Errorf("legacy login: unexpected status %d", code)
}

// denied reports whether a status says the credentials are wrong (not
// that the monolith failed or is overloaded).
func denied(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// user reads the user from a 2xx answer.
func (h *HTTP) user(b []byte) (*idp.LegacyUser, error) {
	u := &idp.LegacyUser{}
	if h.id == nil && h.name == nil && h.customer == nil && len(h.claims) == 0 {
		return u, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("legacy login: the 2xx answer is not JSON: %w", err)
	}
	for _, f := range []struct {
		key string
		p   routes.JSONPointer
		to  *string
	}{{"user_id", h.id, &u.ID}, {"username", h.name, &u.Username}, {"customer_number", h.customer, &u.CustomerNumber}} {
		if f.p == nil {
			continue
		}
		v, ok := textAt(f.p, doc)
		if !ok {
			return nil, fmt.Errorf("legacy login: the answer has no string or number at %s (%s)", f.key, f.p)
		}
		*f.to = v
	}
	for k, p := range h.claims {
		if v, ok := p.Find(doc); ok && v != nil {
			if u.Claims == nil {
				u.Claims = map[string]any{}
			}
			u.Claims[k] = v
		}
	}
	return u, nil
}

// textAt returns the value at p as a string: a JSON string, or a number
// as written; false for anything else or nothing.
func textAt(p routes.JSONPointer, doc any) (string, bool) {
	v, ok := p.Find(doc)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, v != ""
	case json.Number:
		return v.String(), true
	}
	return "", false
}
