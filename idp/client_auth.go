package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// ClientStorage finds the clients that authenticate at the endpoints.
type ClientStorage interface {
	// GetClient returns a client by id; store.ErrNotFound if there is none.
	GetClient(ctx context.Context, id string) (*store.Client, error)
}

// cachedSecret is the digest of a client secret that verified recently.
type cachedSecret struct {
	digest [32]byte
	until  time.Time
}

// AuthenticateClient authenticates the calling client by
// client_secret_basic or client_secret_post, or identifies a public client
// by client_id. It never reveals whether the client exists.
//
// Rate limits apply in this order: an address with too many failed
// authentications is refused (429) before any work; a failure (bad or
// missing credentials, or a check refused because the hashing budget
// stayed full) charges the caller's address, never the client it named;
// only a client that authenticated is charged its own bucket (a public
// client, which anyone can name, per client and address). Argon2id checks
// in flight from an address never outnumber the failures it has left.
func (p *Provider) AuthenticateClient(ctx context.Context, r *Request) (*store.Client, error) {
	now := p.now()
	addr := addrKey(r.RemoteIP)
	refused := func(wait int) error {
		return ErrSlowDown.WithDescription("too many failed client authentications from this address").WithRetryAfter(wait)
	}
	if blocked, wait := p.failLimit.blocked(addr, now); blocked {
		return nil, refused(wait)
	}
	admit := func() (func(), error) {
		done, ok, wait := p.failLimit.admit(addr, now)
		if !ok {
			return nil, refused(wait)
		}
		return done, nil
	}
	c, err := p.authenticateClient(ctx, r, now, admit)
	if err != nil {
		if errors.Is(err, ErrInvalidClient) || errors.Is(err, errHashBusy) {
			p.failLimit.charge(addr, now)
		}
		return nil, err
	}
	key := "client:" + c.ID
	if c.Public() {
		key += "|" + addr
	}
	if ok, wait := p.clientLimit.allow(key, now); !ok {
		return nil, ErrSlowDown.WithDescription("too many requests for this client").WithRetryAfter(wait)
	}
	return c, nil
}

// authenticateClient authenticates without rate limits; admit is asked
// before every argon2id check and its done called after.
func (p *Provider) authenticateClient(ctx context.Context, r *Request, now time.Time, admit func() (func(), error)) (*store.Client, error) {
	id, secret := r.get("client_id"), r.get("client_secret")
	if r.HasBasic {
		if secret != "" {
			return nil, ErrInvalidRequest.WithDescription("use one client authentication method, not two")
		}
		if id != "" && id != r.BasicID {
			return nil, ErrInvalidRequest.WithDescription("client_id does not match the authenticated client")
		}
		id, secret = r.BasicID, r.BasicPW
	}
	if id == "" {
		return nil, ErrInvalidClient.WithDescription("client authentication required")
	}
	c, err := p.getClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if secret == "" { // as fast as a known confidential client without a secret
			p.auditFail(ctx, id, "", r.RemoteIP, "unknown client")
			return nil, ErrInvalidClient.WithDescription("client authentication required")
		}
		done, err := admit()
		if err != nil {
			return nil, err
		}
		_, err = p.verifyHash(ctx, p.dummyHash, secret) // the same cost as a wrong secret
		done()
		if err != nil {
			return nil, err
		}
		p.auditFail(ctx, id, "", r.RemoteIP, "unknown client")
		return nil, ErrInvalidClient.WithDescription("client authentication failed")
	}
	if err != nil {
		return nil, ErrUnavailable.WithCause(err)
	}
	if c.Public() {
		if secret != "" {
			return nil, ErrInvalidClient.WithDescription("client authentication failed")
		}
		return c, nil
	}
	if secret == "" {
		return nil, ErrInvalidClient.WithDescription("client authentication required")
	}
	ok, err := p.verifySecret(ctx, c, secret, addrKey(r.RemoteIP), now, admit)
	if err != nil {
		return nil, err
	}
	if !ok {
		p.auditFail(ctx, id, "", r.RemoteIP, "bad client secret")
		return nil, ErrInvalidClient.WithDescription("client authentication failed")
	}
	return c, nil
}

// verifySecret checks a client secret. A secret that verified recently is
// recognised by its SHA-256 digest (constant-time) until SecretCacheTTL,
// so that machine clients do not pay argon2id on every request. A check
// that needs argon2id runs within the hashing budget and may be refused
// (503) when the budget stays full.
//
// Concurrent checks of the same secret from the same address (addr, its
// limit key) share one argon2id run, and only that run is admitted by the
// address's failure budget (admit): issue 15, a cold start with 32
// concurrent first requests of a client with the right secret had each
// request admitted on its own, so that the requests beyond the budget
// were refused 429 "too many failed client authentications" though none
// had failed. The budget still bounds the argon2id runs in flight from an
// address (one per distinct secret), and a wrong secret still charges
// every request that sent it.
func (p *Provider) verifySecret(ctx context.Context, c *store.Client, secret, addr string, now time.Time, admit func() (func(), error)) (bool, error) {
	var buf [256]byte // client id, NUL, secret: on the stack when they fit
	digest := sha256.Sum256(append(append(append(buf[:0], c.ID...), 0), secret...))
	if v, ok := p.secretCache.Load(c.ID); ok {
		cs := v.(cachedSecret)
		if now.Before(cs.until) && subtle.ConstantTimeCompare(cs.digest[:], digest[:]) == 1 {
			return true, nil
		}
	}
	// The address is part of the key: a request is never answered with the
	// refusal of another address's budget.
	ok, err, _ := p.verifying.Do(addr+"\x00"+string(digest[:]), func() (any, error) {
		done, err := admit()
		if err != nil {
			return false, err
		}
		defer done()
		checked := false
		for _, s := range c.Secrets {
			if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
				continue
			}
			checked = true
			match, err := p.verifyHash(ctx, s.Hash, secret)
			if err != nil {
				return false, err
			}
			if match {
				until := now.Add(p.cfg.SecretCacheTTL)
				if !s.ExpiresAt.IsZero() && s.ExpiresAt.Before(until) {
					until = s.ExpiresAt
				}
				p.secretCache.Store(c.ID, cachedSecret{digest: digest, until: until})
				return true, nil
			}
		}
		if !checked { // every secret expired: cost what a wrong secret costs
			if _, err := p.verifyHash(ctx, p.dummyHash, secret); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		return false, err
	}
	return ok.(bool), nil
}
