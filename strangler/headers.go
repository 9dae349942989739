package strangler

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/ficus-gw/ficus/strangler/clientaddr"
)

// OwnedHeaderPrefix marks headers that only ficus sets for upstreams; a
// client's copies are always removed.
const OwnedHeaderPrefix = "X-Ficus-"

// stripOwned removes the client's copies of headers that ficus owns: any
// X-Ficus-* header and the configured extra names (canonical form).
func stripOwned(h http.Header, extra []string) {
	for k := range h {
		if len(k) >= len(OwnedHeaderPrefix) && strings.EqualFold(k[:len(OwnedHeaderPrefix)], OwnedHeaderPrefix) {
			delete(h, k)
		}
	}
	for _, k := range extra {
		delete(h, k)
	}
}

// validRequestID accepts a client's X-Request-Id when it is short and
// plain; anything else is replaced.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// trusted reports whether the peer at remoteAddr (host:port) is a
// configured trusted proxy, whose X-Forwarded-* headers ficus keeps and
// extends. clientaddr decides, as it does for the adapters and the IDP.
func trusted(remoteAddr string, prefixes []netip.Prefix) bool {
	if len(prefixes) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	return err == nil && clientaddr.New(prefixes).Trusted(ap.Addr())
}
