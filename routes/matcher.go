package routes

import (
	"bytes"
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"unsafe"
)

// Matcher finds the most specific route for a request. It is compiled from
// a validated File, is immutable, and is safe for concurrent use. Its cost
// depends on the depth of the path, not on the number of routes, and a
// match does not allocate.
//
// Specificity, from strongest to weakest:
//  1. a route with a host beats one without;
//  2. path segments are compared left to right: a literal segment beats a
//     {parameter}, a deeper match beats a shallower one, and a whole-path
//     match beats a prefix ending at the same segment;
//  3. a route with a header condition beats one without, then a route with
//     methods beats one without.
//
// Two routes that remain equal after all of these and can match the same
// request make the file invalid. Literal segments compare
// case-insensitively, and a segment's ;parameters are ignored, so that
// /Admin and /admin;x match like /admin (as many servers treat them).
type Matcher struct {
	hosts map[string]*node
	any   *node
	rules []rule
}

type node struct {
	lit    map[string]*node
	param  *node
	exact  []int32
	prefix []int32
}

type rule struct {
	route    int
	methods  []string
	header   string
	value    string
	hasValue bool
	rank     int
}

// Match returns the index in File.Routes of the route for a request, or -1
// when none matches. host may carry a port; path must be normalised by
// NormalizePath.
func (m *Matcher) Match(host, method, path string, h http.Header) int {
	host = hostOnly(host)
	var buf [256]byte
	p := lowerPath(path, buf[:0])
	if m.hosts != nil && host != "" {
		n := m.hosts[host]
		if n == nil && hasUpper(host) {
			n = m.hosts[strings.ToLower(host)]
		}
		if n != nil {
			if id := m.walk(n, p, method, h); id >= 0 {
				return m.rules[id].route
			}
		}
	}
	if id := m.walk(m.any, p, method, h); id >= 0 {
		return m.rules[id].route
	}
	return -1
}

func (m *Matcher) walk(n *node, p []byte, method string, h http.Header) int32 {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	if len(p) == 0 {
		if id := m.pick(n.exact, method, h); id >= 0 {
			return id
		}
		return m.pick(n.prefix, method, h)
	}
	end := bytes.IndexByte(p, '/')
	if end < 0 {
		end = len(p)
	}
	seg, rest := p[:end], p[end:]
	if k := bytes.IndexByte(seg, ';'); k >= 0 {
		seg = seg[:k]
	}
	if n.lit != nil {
		if c := n.lit[string(seg)]; c != nil {
			if id := m.walk(c, rest, method, h); id >= 0 {
				return id
			}
		}
	}
	if n.param != nil && len(seg) > 0 {
		if id := m.walk(n.param, rest, method, h); id >= 0 {
			return id
		}
	}
	return m.pick(n.prefix, method, h)
}

func (m *Matcher) pick(ids []int32, method string, h http.Header) int32 {
	for _, id := range ids {
		r := &m.rules[id]
		if len(r.methods) > 0 && !hasMethod(r.methods, method) {
			continue
		}
		if r.header != "" {
			vs := h[r.header]
			if len(vs) == 0 || (r.hasValue && !contains(vs, r.value)) {
				continue
			}
		}
		return id
	}
	return -1
}

func hasMethod(methods []string, m string) bool {
	for _, x := range methods {
		if x == m || (x == http.MethodGet && m == http.MethodHead) {
			return true
		}
	}
	return false
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// lowerPath returns path as bytes, lower-cased into buf when it has upper
// case letters; otherwise it shares the string's bytes (read only).
func lowerPath(path string, buf []byte) []byte {
	if !hasUpper(path) {
		return unsafe.Slice(unsafe.StringData(path), len(path))
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// hostOnly strips the port from a Host header value.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// Compile builds the matcher of a validated file. For a file from Parse
// whose Routes slice was not replaced since, it returns the matcher that
// validation already built (a Matcher is immutable), so that loading a
// large rule set compiles it once.
func Compile(f *File) (*Matcher, error) {
	if f.matcher != nil && sameRoutes(f.routes, f.Routes) {
		return f.matcher, nil
	}
	return compile(f)
}

// sameRoutes reports whether a and b are the same slice.
func sameRoutes(a, b []*Route) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func compile(f *File) (*Matcher, error) {
	m := &Matcher{any: &node{}}
	for i, r := range f.Routes {
		ru := rule{route: i, methods: r.Match.Methods}
		if hm := r.Match.Header; hm != nil {
			ru.header = textproto.CanonicalMIMEHeaderKey(hm.Name)
			ru.value, ru.hasValue = hm.Value, hm.Value != ""
			ru.rank += 2
		}
		if len(ru.methods) > 0 {
			ru.rank++
		}
		id := int32(len(m.rules))
		m.rules = append(m.rules, ru)

		root := m.any
		if r.Match.Host != "" {
			if m.hosts == nil {
				m.hosts = map[string]*node{}
			}
			host := strings.ToLower(r.Match.Host)
			if m.hosts[host] == nil {
				m.hosts[host] = &node{}
			}
			root = m.hosts[host]
		}
		pattern, isPrefix := r.Match.Path, false
		if pattern == "" {
			pattern, isPrefix = r.Match.Prefix, true
		}
		n := root
		for _, seg := range strings.Split(strings.Trim(pattern, "/"), "/") {
			switch {
			case seg == "":
			case seg[0] == '{':
				if n.param == nil {
					n.param = &node{}
				}
				n = n.param
			default:
				seg = strings.ToLower(seg)
				if n.lit == nil {
					n.lit = map[string]*node{}
				}
				if n.lit[seg] == nil {
					n.lit[seg] = &node{}
				}
				n = n.lit[seg]
			}
		}
		if isPrefix {
			n.prefix = append(n.prefix, id)
		} else {
			n.exact = append(n.exact, id)
		}
	}
	var errs Errors
	var visit func(n *node)
	visit = func(n *node) {
		for _, list := range [][]int32{n.exact, n.prefix} {
			sort.SliceStable(list, func(i, j int) bool { return m.rules[list[i]].rank > m.rules[list[j]].rank })
			for i := range list {
				for j := i + 1; j < len(list); j++ {
					a, b := &m.rules[list[i]], &m.rules[list[j]]
					if a.rank == b.rank && overlap(a, b) {
						first, second := a.route, b.route
						if first > second {
							first, second = second, first
						}
						errs = append(errs, f.errAt(fmt.Sprintf("routes[%d].match", second),
							"ambiguous: route %q and route %q match the same requests with the same specificity",
							f.Routes[first].Name, f.Routes[second].Name))
					}
				}
			}
		}
		for _, c := range n.lit {
			visit(c)
		}
		if n.param != nil {
			visit(n.param)
		}
	}
	visit(m.any)
	for _, n := range m.hosts {
		visit(n)
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return m, nil
}

// overlap reports whether some request can match both rules.
func overlap(a, b *rule) bool {
	if len(a.methods) > 0 && len(b.methods) > 0 && !methodsIntersect(a.methods, b.methods) {
		return false
	}
	if a.header == b.header && a.hasValue && b.hasValue && a.value != b.value {
		return false
	}
	return true
}

func methodsIntersect(a, b []string) bool {
	for _, x := range a {
		if hasMethod(b, x) {
			return true
		}
	}
	for _, y := range b {
		if hasMethod(a, y) {
			return true
		}
	}
	return false
}
