package strangler

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"time"
)

// Cohorts are buckets 0..9999; a split gives each target a contiguous run
// of buckets. New upstreams get the low buckets and the monolith the rest,
// so raising a new upstream's percent only ever moves visitors from the
// monolith to it, never back.
const buckets = 10000

// DefaultCohortMaxAge is the lifetime of the cohort cookie.
const DefaultCohortMaxAge = 30 * 24 * time.Hour

// bucketOf hashes a cohort id (with the route's salt) to a bucket with
// 64-bit FNV-1a over salt, a zero byte and id, the same on every instance
// and in every version: changing it would move visitors between cohorts.
func bucketOf(salt, id string) int {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * prime
	}
	h *= prime // the zero separator byte: h ^ 0 is h
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	return int(h % buckets)
}

func newCohortID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}

// choose picks the target of a request: a tester override first, then the
// split by cohort (sticky) or at random. A request without a cohort key
// (no header, no claim: an anonymous caller) is placed at random.
func (rt *liveRoute) choose(w http.ResponseWriter, r *http.Request, secure bool, claims Claims) *target {
	if o := rt.cfg.Override; o != nil {
		var v string
		if o.Header != "" {
			v = r.Header.Get(o.Header) // removed from the outbound request: it is for ficus
		}
		if v == "" && o.Cookie != "" {
			if c, err := r.Cookie(o.Cookie); err == nil {
				v = c.Value
			}
		}
		if v != "" {
			if tg := rt.target(v); tg != nil {
				return tg
			}
		}
	}
	if len(rt.targets) == 1 {
		return rt.targets[0]
	}
	b := -1
	if s := rt.cfg.Sticky; s != nil {
		switch {
		case s.Cookie != "":
			id := ""
			if c, err := r.Cookie(s.Cookie); err == nil && c.Value != "" && len(c.Value) <= 128 {
				id = c.Value
			} else {
				id = newCohortID()
				http.SetCookie(w, &http.Cookie{
					Name: s.Cookie, Value: id, Path: "/", MaxAge: int(s.MaxAge.Std(DefaultCohortMaxAge) / time.Second),
					HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
				})
			}
			b = bucketOf(s.Salt, id)
		case s.Header != "":
			if id := r.Header.Get(s.Header); id != "" {
				b = bucketOf(s.Salt, id)
			}
		case s.Claim != "":
			if claims != nil {
				if id := claims.Claim(s.Claim); id != "" {
					b = bucketOf(s.Salt, id)
				}
			}
		}
	}
	if b < 0 {
		b = rand.IntN(buckets)
	}
	for i, end := range rt.bounds {
		if b < end {
			return rt.targets[i]
		}
	}
	return rt.targets[len(rt.targets)-1]
}
