package routes

import (
	"fmt"
	"strconv"
	"strings"
)

// JSONPointer is a parsed RFC 6901 JSON pointer: its reference tokens,
// unescaped. The empty pointer (no tokens) is the whole document. The
// rule file's bridges map answers with them, and so does the IDP's lazy
// credential migration.
type JSONPointer []string

// ParseJSONPointer parses "" (the whole document) or "/a/b~1c/0"; a
// pointer that does not start with / or has a ~ not followed by 0 or 1 is
// an error.
func ParseJSONPointer(s string) (JSONPointer, error) {
	if reason := checkJSONPointer(s); reason != "" {
		return nil, fmt.Errorf("%s", reason)
	}
	if s == "" {
		return JSONPointer{}, nil
	}
	toks := strings.Split(s[1:], "/")
	for i, t := range toks {
		if strings.Contains(t, "~") {
			// ~1 first, then ~0, as RFC 6901 section 4 says: "~01" is "~1".
			toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		}
	}
	return toks, nil
}

// checkJSONPointer says what is wrong with an RFC 6901 JSON pointer, or
// "" when it is valid.
func checkJSONPointer(p string) string {
	if p != "" && !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("%q is not a JSON pointer (RFC 6901: empty, or starting with /)", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return fmt.Sprintf("%q: ~ must be followed by 0 or 1 (RFC 6901)", p)
		}
	}
	return ""
}

// Find returns the value p points at in doc (decoded by encoding/json),
// and whether there is one.
func (p JSONPointer) Find(doc any) (any, bool) {
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

// String writes the pointer back in RFC 6901 form.
func (p JSONPointer) String() string {
	var b strings.Builder
	for _, t := range p {
		b.WriteString("/" + strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
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
