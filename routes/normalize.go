package routes

import (
	"errors"
	"strings"
)

// Errors from NormalizePath. Each means the request is refused (400): ficus
// will not guess what an upstream makes of such a path.
var (
	ErrPathNotAbsolute = errors.New("path does not start with /")
	ErrBadEscape       = errors.New("path has an invalid percent-escape")
	ErrEncodedSlash    = errors.New("path has an encoded slash or backslash")
	ErrControlChar     = errors.New("path has a control character or backslash")
)

// NormalizePath returns the one form of a request path (in its escaped form,
// as url.URL.EscapedPath returns it) that ficus both matches routes against
// and forwards, so that no spelling of a path can match one route and reach
// another route's upstream:
//
//   - percent-escapes of characters that may stand unescaped in a path
//     segment (letters, digits, - . _ ~ ! $ & ' ( ) * + , ; = : @) are
//     decoded, and the hex digits of the remaining escapes are upper-cased;
//   - encoded slashes and backslashes (%2F, %5C), NUL and other control
//     characters, and raw backslashes are refused;
//   - empty segments (//) are dropped and . and .. are resolved (after
//     decoding, so %2e%2e is ..); .. never climbs above the root;
//   - a segment is empty, . or .. by its name, the part before its first
//     ';' (after decoding, so %3b is ;), as Tomcat, Jetty and Spring take
//     it: /x/..;/admin, /.;jsessionid=1/admin and /;x/admin are all
//     /admin. The ;parameters of such a segment are dropped with it.
//
// The result therefore has no segment that any server, whether it strips
// ;parameters or not, resolves as a dot or empty segment: what ficus
// matches is what an upstream receives. A trailing slash is kept. The
// result of a path that needs no change is the path itself, without
// allocating. Matching is also case-insensitive and ignores ;parameters
// in a segment; see Matcher.
func NormalizePath(p string) (string, error) {
	if len(p) == 0 || p[0] != '/' {
		return "", ErrPathNotAbsolute
	}
	clean := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			clean = false
		case c == '\\' || c < 0x20 || c == 0x7f:
			return "", ErrControlChar
		case c == '/' && i+1 < len(p):
			// A segment that starts with / or ; or is ., .., .;…, ..;…
			// (and, conservatively, ..x) needs the slow path.
			next := p[i+1]
			if next == '/' || next == ';' || (next == '.' && (i+2 == len(p) || p[i+2] == '/' || p[i+2] == '.' || p[i+2] == ';')) {
				clean = false
			}
		}
	}
	if clean {
		return p, nil
	}
	return normalizeSlow(p)
}

func normalizeSlow(p string) (string, error) {
	// Decode what may be decoded, segment by segment.
	segs := make([]string, 0, 8)
	var b strings.Builder
	trailing := false
	for _, raw := range strings.Split(p[1:], "/") {
		b.Reset()
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c != '%' {
				b.WriteByte(c)
				continue
			}
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", ErrBadEscape
			}
			d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			switch {
			case d == '/' || d == '\\':
				return "", ErrEncodedSlash
			case d < 0x20 || d == 0x7f:
				return "", ErrControlChar
			case segmentChar(d):
				b.WriteByte(d)
			default:
				b.WriteByte('%')
				b.WriteByte(upperHex[d>>4])
				b.WriteByte(upperHex[d&15])
			}
			i += 2
		}
		seg := b.String()
		name, _, _ := strings.Cut(seg, ";")
		switch name {
		case "":
			trailing = true
			continue
		case ".":
			trailing = true
			continue
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			trailing = true
			continue
		}
		trailing = false
		segs = append(segs, seg)
	}
	if len(segs) == 0 {
		return "/", nil
	}
	out := "/" + strings.Join(segs, "/")
	if trailing {
		out += "/"
	}
	return out, nil
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// segmentChar reports whether c may stand unescaped in a path segment
// (RFC 3986 pchar: unreserved, sub-delims, ':' and '@').
func segmentChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}
