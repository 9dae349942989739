package routes

// The character classes of names, tokens and path segments, checked byte
// by byte: validation runs them on every route of a file, and a regular
// expression costs several times more. TestCharClassesMatchTheirPatterns
// holds each equal to the pattern in its comment.

const (
	lowerDigits = "abcdefghijklmnopqrstuvwxyz0123456789"
	alnum       = lowerDigits + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// byteSet is a set of bytes.
type byteSet [256]bool

func setOf(chars string) *byteSet {
	var s byteSet
	for i := 0; i < len(chars); i++ {
		s[chars[i]] = true
	}
	return &s
}

// all reports whether s is not empty and every byte of it is in the set.
func (set *byteSet) all(s string) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return s != ""
}

var (
	nameFirst  = setOf(lowerDigits)
	nameRest   = setOf(lowerDigits + "_.-")
	tchars     = setOf(alnum + "!#$%&'*+.^_`|~-")
	literals   = setOf(alnum + "._~!$&'()*+,=:@-")
	paramFirst = setOf(alnum[:26] + alnum[36:] + "_")
	paramRest  = setOf(alnum + "_")
)

// validName: ^[a-z0-9][a-z0-9_.-]{0,62}$ (route, upstream, bridge and
// claim names).
func validName(s string) bool {
	return len(s) >= 1 && len(s) <= 63 && nameFirst[s[0]] && (len(s) == 1 || nameRest.all(s[1:]))
}

// isToken: ^[!#$%&'*+.^_`|~0-9A-Za-z-]+$ (an HTTP token: methods, header
// and cookie names).
func isToken(s string) bool { return tchars.all(s) }

// isLiteral: ^[A-Za-z0-9._~!$&'()*+,=:@-]+$ (a literal path segment).
func isLiteral(s string) bool { return literals.all(s) }

// isParam: ^\{[A-Za-z_][A-Za-z0-9_]*\}$ (a {parameter} segment).
func isParam(s string) bool {
	if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' || !paramFirst[s[1]] {
		return false
	}
	in := s[2 : len(s)-1]
	return in == "" || paramRest.all(in)
}
