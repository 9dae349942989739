package bridge

import (
	"strconv"
	"strings"
)

// pointer is a parsed RFC 6901 JSON pointer: its reference tokens,
// unescaped. The empty pointer (no tokens) is the whole document.
type pointer []string

// parsePointer parses p, which the rule file's validation has checked
// (empty, or / followed by tokens where ~ is followed by 0 or 1).
func parsePointer(p string) pointer {
	if p == "" {
		return pointer{}
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		if strings.Contains(t, "~") {
			// ~1 first, then ~0, as RFC 6901 section 4 says: "~01" is "~1".
			toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		}
	}
	return toks
}

// find returns the value p points at in doc (decoded by encoding/json),
// and whether there is one.
func (p pointer) find(doc any) (any, bool) {
	for _, tok := range p {
		switch v := doc.(type) {
		case map[string]any:
			var ok bool
			if doc, ok = v[tok]; !ok {
				return nil, false
			}
		case []any:
			i, ok := arrayIndex(tok)
			if !ok || i >= len(v) {
				return nil, false
			}
			doc = v[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

// arrayIndex reads an array index token: digits without a leading zero.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(tok)
	return i, err == nil
}
