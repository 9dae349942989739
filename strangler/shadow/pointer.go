package shadow

import (
	"fmt"
	"strconv"
	"strings"
)

// Pattern is a parsed JSON pointer whose token * matches any one key or
// index. It matches a path it is a prefix of, token by token.
type Pattern []string

// ParsePattern parses a JSON pointer (RFC 6901) with * tokens. The empty
// pointer, the whole document, is allowed.
func ParsePattern(p string) (Pattern, error) {
	if p == "" {
		return Pattern{}, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%q is not a JSON pointer: it must start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("%q is not a JSON pointer: ~ must be followed by 0 or 1", p)
			}
		}
		toks[i] = unescape(t)
	}
	return toks, nil
}

func unescape(t string) string {
	if !strings.Contains(t, "~") {
		return t
	}
	// ~1 first, then ~0, as RFC 6901 section 4 says: "~01" is "~1".
	return strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
}

func escape(t string) string {
	if !strings.ContainsAny(t, "~/") {
		return t
	}
	return strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
}

// Matches reports whether p names path (a list of tokens) or one of its
// ancestors.
func (p Pattern) Matches(path []string) bool {
	if len(p) > len(path) {
		return false
	}
	for i, t := range p {
		if t != "*" && t != path[i] {
			return false
		}
	}
	return true
}

// pointerString writes tokens as a JSON pointer.
func pointerString(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
}

func indexToken(i int) string { return strconv.Itoa(i) }
