package federation

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"github.com/maypok86/otter/v2"
	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
)

// A login in progress is a random handle in a cookie of the browser that
// started it; the store knows it by the handle's hash, and the state, the
// nonce and the PKCE verifier sent upstream are derived from it. So the
// row alone finishes nothing, a callback from another browser finds no
// cookie, and the row is deleted by the first callback that presents it.

// cookiePrefix starts the name of a login's cookie; the rest is the start
// of the login's state, so that logins in two tabs do not overwrite each
// other's cookie.
const (
	cookiePrefix = "ficus_fed_"
	cookieIDLen  = 12
	cookiePath   = "/oauth2/federation/"
)

// pending is what a login completes: an authorization request (its
// parameters, validated again on return) or a web session login.
type pending struct {
	Kind     string              `json:"kind"` // authorize or session
	Params   map[string][]string `json:"params,omitempty"`
	ReturnTo string              `json:"return_to,omitempty"`
}

const (
	kindAuthorize = "authorize"
	kindSession   = "session"
)

// derive returns a value derived from the handle for one purpose.
func derive(handle, purpose string) string {
	m := hmac.New(sha256.New, []byte(handle))
	m.Write([]byte("ficus federation " + purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// begin records a login at u for what and sends the browser there.
func (f *Federation) begin(ctx context.Context, w http.ResponseWriter, r *http.Request, u *upstream, what pending) error {
	addr := f.o.ClientAddr(r)
	lim, _ := f.starts.Compute(addr, func(old *rate.Limiter, found bool) (*rate.Limiter, otter.ComputeOp) {
		if found {
			return old, otter.CancelOp
		}
		return rate.NewLimiter(f.startRate, f.startMax), otter.WriteOp
	})
	if !lim.Allow() {
		return refusal(http.StatusTooManyRequests, u, "Too many sign-ins were started from your address. Wait a minute and try again.", nil)
	}
	if !u.inFlight.TryAcquire(1) {
		return refusal(http.StatusServiceUnavailable, u, "Too many sign-ins with %s are in progress. Try again in a moment.", nil)
	}
	d, err := u.discover(ctx, f.o.Now())
	u.inFlight.Release(1)
	if err != nil {
		f.log.Warn("federation: an upstream provider cannot be reached", "provider", u.cfg.Name, "error", err.Error())
		return refusal(http.StatusBadGateway, u, "%s cannot be reached right now. Try again later, or sign in another way.", err)
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	handle := base64.RawURLEncoding.EncodeToString(b[:])
	state := derive(handle, "state")
	body, _ := json.Marshal(what)
	if err := f.o.Store.CreateFederatedLogin(ctx, &store.FederatedLogin{ID: tokenhash.Sum(handle), Provider: u.cfg.Name,
		Pending: body, ExpiresAt: f.o.Now().Add(f.ttl)}); err != nil {
		return refusal(http.StatusServiceUnavailable, u, "The sign-in service is unavailable. Try again later.", err)
	}
	http.SetCookie(w, &http.Cookie{Name: cookiePrefix + state[:cookieIDLen], Value: handle, Path: cookiePath,
		MaxAge: int(f.ttl.Seconds()), HttpOnly: true, Secure: f.secure, SameSite: http.SameSiteLaxMode})
	target := d.oauth.AuthCodeURL(state, oidcNonce(derive(handle, "nonce")), oauth2.S256ChallengeOption(derive(handle, "pkce")))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

func oidcNonce(n string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("nonce", n) }

// callback is a login's return: its state, cookie and row, checked and
// consumed. The cookie is cleared whatever happens.
type callback struct {
	handle string
	what   pending
}

// take finds and consumes the login the callback r returns from, at
// upstream u.
func (f *Federation) take(ctx context.Context, w http.ResponseWriter, r *http.Request, u *upstream) (*callback, error) {
	state := r.URL.Query().Get("state")
	if len(state) < cookieIDLen || strings.ContainsAny(state[:cookieIDLen], "=;, ") {
		return nil, refusal(http.StatusBadRequest, u, "This sign-in answer from %s is not valid. Start again.", errors.New("no or malformed state"))
	}
	name := cookiePrefix + state[:cookieIDLen]
	ck, err := r.Cookie(name)
	if err != nil || ck.Value == "" {
		return nil, refusal(http.StatusBadRequest, u, "This sign-in with %s was not started in this browser, or it is over. Start again.", errors.New("no login cookie"))
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: cookiePath, MaxAge: -1, HttpOnly: true, Secure: f.secure, SameSite: http.SameSiteLaxMode})
	handle := ck.Value
	if subtle.ConstantTimeCompare([]byte(derive(handle, "state")), []byte(state)) != 1 {
		return nil, refusal(http.StatusBadRequest, u, "This sign-in answer from %s does not belong to the sign-in this browser started. Start again.", errors.New("state mismatch"))
	}
	l, err := f.o.Store.ConsumeFederatedLogin(ctx, tokenhash.Sum(handle), f.o.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, refusal(http.StatusBadRequest, u, "This sign-in with %s was used already. Start again.", errors.New("login already consumed"))
	case errors.Is(err, store.ErrInactive):
		return nil, refusal(http.StatusBadRequest, u, "This sign-in with %s took too long. Start again.", errors.New("login expired"))
	case err != nil:
		return nil, refusal(http.StatusServiceUnavailable, u, "The sign-in service is unavailable. Try again later.", err)
	case l.Provider != u.cfg.Name:
		return nil, refusal(http.StatusBadRequest, u, "This sign-in answer came back from the wrong provider. Start again.",
			fmt.Errorf("a login started at %s came back at %s", l.Provider, u.cfg.Name))
	}
	cb := &callback{handle: handle}
	if err := json.Unmarshal(l.Pending, &cb.what); err != nil {
		return nil, refusal(http.StatusBadRequest, u, "This sign-in cannot be completed. Start again.", err)
	}
	return cb, nil
}

// retryURL is where a refused login may start again.
func (p pending) retryURL() string {
	if p.Kind == kindAuthorize && len(p.Params) > 0 {
		return "/oauth2/authorize?" + url.Values(p.Params).Encode()
	}
	if t := p.ReturnTo; strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "//") && !strings.ContainsRune(t, '\\') {
		return t
	}
	return "/"
}
