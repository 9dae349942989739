// Package clientaddr finds the address of the client behind a request: the
// socket peer, or, when that peer is a configured trusted proxy, the
// nearest address in X-Forwarded-For that is not itself a trusted proxy.
// The gateway's web-hook adapters and the IDP use it, so one rule decides
// whom a per-address limit or an IP allow-list applies to.
//
// It imports only the standard library, so any ficus package may use it.
package clientaddr

import (
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds client addresses. The zero value trusts no proxy: every
// address is the socket peer and X-Forwarded-For is ignored. Safe for
// concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that believes X-Forwarded-For only from peers in
// trusted.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// Trusted reports whether a is one of the trusted proxies.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr returns the client's address (IPv4-mapped IPv6 addresses unmapped),
// or the zero Addr when the peer address cannot be parsed. A malformed
// X-Forwarded-For chain from a trusted proxy yields the proxy itself:
// nothing a client wrote is believed.
func (r *Resolver) Addr(req *http.Request) netip.Addr {
	a := Peer(req)
	if !r.Trusted(a) {
		return a
	}
	hops := strings.Split(strings.Join(req.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a
		}
		if h = h.Unmap(); !r.Trusted(h) {
			return h
		}
	}
	return a
}

// Peer returns the socket peer's address (unmapped), or the zero Addr.
func Peer(req *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
