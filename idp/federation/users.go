package federation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/ficus-gw/ficus/idp/store"
	"github.com/google/uuid"
)

// mapped is what an upstream's claims mean in ficus.
type mapped struct {
	// claims are the profile claims to set; absent lists those to remove.
	claims map[string]any
	absent []string
	// governed are the scopes some role lists; granted those the user's
	// roles grant.
	governed, granted []string
}

// grantable is the part of a requested scope this login may have: a
// scope some role lists only when one of the user's roles lists it.
func (m mapped) grantable(scope string) string {
	var out []string
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(m.governed, s) || slices.Contains(m.granted, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// mapClaims applies the provider's claim and role mappings.
func (u *upstream) mapClaims(upClaims map[string]any) (mapped, error) {
	m := mapped{claims: map[string]any{}}
	for ficus, up := range u.claimsMap {
		if v, ok := upClaims[up]; ok && v != nil {
			m.claims[ficus] = v
		} else {
			m.absent = append(m.absent, ficus)
		}
	}
	// An e-mail address carries whether the upstream verified it, unless
	// email_verified is mapped itself: a user created from (or updated
	// with) an address nobody verified says so, to the RPs and to linking
	// by verified e-mail, which never links to such a user.
	if _, mappedItself := u.claimsMap["email_verified"]; !mappedItself {
		if _, ok := m.claims["email"]; ok {
			m.claims["email_verified"] = u.claimsMap["email"] == "email" && emailVerified(upClaims)
		} else if slices.Contains(m.absent, "email") {
			m.absent = append(m.absent, "email_verified")
		}
	}
	r := u.cfg.Roles
	if r.Claim == "" {
		return m, nil
	}
	groups := stringsOf(upClaims[r.Claim])
	level, matched := "", false
	for _, role := range r.Map {
		m.governed = append(m.governed, role.Scopes...)
		if slices.Contains(groups, role.Group) {
			if !matched {
				level, matched = role.Level, true
			}
			m.granted = append(m.granted, role.Scopes...)
		}
	}
	if !matched && r.Required {
		return m, errNoRole
	}
	if level != "" {
		m.claims[r.levelClaim()] = level
	} else {
		m.absent = append(m.absent, r.levelClaim())
	}
	return m, nil
}

var errNoRole = errors.New("the upstream account is in none of the mapped groups")

// stringsOf reads a claim that is a string or a list of strings.
func stringsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// emailVerified reads email_verified: true, or "true" as some upstreams
// send it.
func emailVerified(claims map[string]any) bool {
	switch v := claims["email_verified"].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// maxEmailMatches is how many users with one e-mail are looked at: two
// say "not exactly one".
const maxEmailMatches = 2

// resolveUser finds the ficus user of a verified upstream identity: by
// its link; else, with link_by_verified_email, the one user with its
// verified e-mail (linked now); else, with create_users, a new user. The
// mapped claims are set on the user at every login. Each refusal is a
// refusalError (403, or 503 when the store fails).
func (f *Federation) resolveUser(ctx context.Context, u *upstream, id *identity, ip string) (*store.User, mapped, error) {
	m, err := u.mapClaims(id.claims)
	if errors.Is(err, errNoRole) {
		return nil, m, refusal(http.StatusForbidden, u, "Your %s account is not in a group that may sign in here.", err)
	}
	unavailable := func(err error) error {
		return refusal(http.StatusServiceUnavailable, u, "The sign-in service is unavailable. Try again later.", err)
	}
	tokens, err := f.seal(u, id)
	if err != nil {
		return nil, m, unavailable(err)
	}
	now := f.o.Now()
	audit := func(event, userID, reason string) {
		f.o.IDP.Audit(ctx, store.AuditEvent{At: now, Event: event, UserID: userID, Grant: "federation:" + u.cfg.Name, Outcome: "ok", Reason: reason, RemoteIP: ip})
	}
	refuse := func(userID, reason, msg string) error {
		f.o.IDP.Audit(ctx, store.AuditEvent{At: now, Event: "user_federated_login", UserID: userID, Grant: "federation:" + u.cfg.Name,
			Outcome: "denied", Reason: reason, RemoteIP: ip})
		return refusal(http.StatusForbidden, u, msg, errors.New(reason))
	}

	link, err := f.o.Store.GetFederatedLink(ctx, id.issuer, id.subject)
	switch {
	case err == nil:
		user, err := f.o.Store.GetUser(ctx, link.UserID)
		if err != nil {
			return nil, m, unavailable(err)
		}
		if !user.Enabled {
			return nil, m, refuse(user.ID, "the linked user is disabled", "Your account is disabled.")
		}
		if err := f.o.Store.TouchFederatedLink(ctx, id.issuer, id.subject, now, tokens); err != nil {
			return nil, m, unavailable(err)
		}
		if user, err = f.applyClaims(ctx, user, m); err != nil {
			return nil, m, unavailable(err)
		}
		audit("user_federated_login", user.ID, "")
		return user, m, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, m, unavailable(err)
	}

	newLink := &store.FederatedLink{Issuer: id.issuer, Subject: id.subject, Provider: u.cfg.Name, Tokens: tokens, CreatedAt: now, LastLogin: now}
	email, _ := id.claims["email"].(string)
	if u.cfg.LinkByVerifiedEmail && email != "" {
		found, err := f.o.Store.UsersByEmail(ctx, email, maxEmailMatches)
		if err != nil {
			return nil, m, unavailable(err)
		}
		// The stores compare with Unicode case folding (lower() in
		// PostgreSQL): only ASCII case is the same mailbox.
		var users []*store.User
		for _, cand := range found {
			if e, _ := cand.Claims["email"].(string); asciiEqualFold(e, email) {
				users = append(users, cand)
			}
		}
		switch {
		case len(users) == 0 && len(found) > 0:
			return nil, m, refuse("", "an e-mail that differs only in Unicode case matches an existing user",
				"An account here uses an address that looks like yours at %s. Sign in with your password, or ask support to link your account.")
		case len(users) == 0:
			// nobody to link to: create, or refuse, below
		case !emailVerified(id.claims):
			return nil, m, refuse("", "an unverified e-mail matches an existing user",
				"Your e-mail address at %s is not verified, and an account here uses it. Verify it there, or sign in with your password.")
		case len(users) > 1:
			return nil, m, refuse("", "more than one user has the e-mail",
				"Your e-mail address belongs to more than one account here; ask support to link your %s account.")
		case !users[0].Enabled:
			return nil, m, refuse(users[0].ID, "the user with the e-mail is disabled", "Your account is disabled.")
		case users[0].Claims["email_verified"] == false:
			return nil, m, refuse(users[0].ID, "the existing user's e-mail is marked unverified",
				"The account here with your e-mail address has not verified it; sign in with your password first.")
		default:
			newLink.UserID = users[0].ID
			switch err := f.o.Store.CreateFederatedLink(ctx, newLink); {
			case errors.Is(err, store.ErrExists):
				return nil, m, refuse(users[0].ID, "the user is linked to another account at this issuer",
					"The account here with your e-mail address is linked to another %s account.")
			case err != nil:
				return nil, m, unavailable(err)
			}
			audit("user_linked", users[0].ID, "verified e-mail")
			user, err := f.applyClaims(ctx, users[0], m)
			if err != nil {
				return nil, m, unavailable(err)
			}
			audit("user_federated_login", user.ID, "")
			return user, m, nil
		}
	}
	if !u.cfg.CreateUsers {
		return nil, m, refuse("", "no user is linked to the upstream account",
			"There is no account here for your %s account. Sign in with your password, or ask for an account.")
	}
	name := u.cfg.Name + ":" + id.subject
	if len(name) > 256 {
		return nil, m, refuse("", "the upstream subject is too long for a username", "Your %s account cannot be used here.")
	}
	user := &store.User{ID: uuid.NewString(), Username: name, Claims: m.claims, Enabled: true, CreatedAt: now}
	switch err := f.o.Store.CreateUser(ctx, user); {
	case errors.Is(err, store.ErrExists):
		return nil, m, refuse("", fmt.Sprintf("the username %s is taken", name), "Your %s account cannot be used here: its username is taken.")
	case err != nil:
		return nil, m, unavailable(err)
	}
	newLink.UserID = user.ID
	switch err := f.o.Store.CreateFederatedLink(ctx, newLink); {
	case errors.Is(err, store.ErrExists):
		// A concurrent first login of the same account linked it first:
		// that link's user is the one; this one is never used.
		_ = f.o.Store.SetUserEnabled(ctx, user.ID, false)
		return f.resolveUser(ctx, u, id, ip)
	case err != nil:
		return nil, m, unavailable(err)
	}
	audit("user_created_federated", user.ID, "")
	audit("user_federated_login", user.ID, "")
	return user, m, nil
}

// applyClaims sets the mapped claims on user (stored only when they
// change) and returns it as it is now.
func (f *Federation) applyClaims(ctx context.Context, user *store.User, m mapped) (*store.User, error) {
	next := maps.Clone(user.Claims)
	if next == nil {
		next = map[string]any{}
	}
	for k, v := range m.claims {
		next[k] = v
	}
	for _, k := range m.absent {
		delete(next, k)
	}
	if reflect.DeepEqual(next, user.Claims) || (len(next) == 0 && len(user.Claims) == 0) {
		return user, nil
	}
	if err := f.o.Store.SetUserClaims(ctx, user.ID, next); err != nil {
		return nil, err
	}
	user.Claims = next
	return user, nil
}

// asciiEqualFold reports whether a and b are equal ignoring the case of
// ASCII letters only (other bytes must be equal).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
