package routes

import (
	"errors"
	"fmt"
	"strings"
)

// Prefixes is a set of path prefixes matched exactly as a route's
// match.prefix is (by a Matcher): on segment boundaries, literal segments
// case-insensitively, {name} segments as any one segment, and a segment's
// ;parameters ignored. Every component other than the gateway that decides
// something by path (the sidecar's scope rules, the mobile adapter's paths)
// uses it on a path from NormalizePath, so that no spelling of a path is
// judged one way there and another way by the gateway.
//
// A Prefixes is immutable and safe for concurrent use.
type Prefixes struct {
	m *Matcher
	// index maps the matcher's route index to the caller's.
	index []int
}

// CompilePrefixes compiles prefixes, each written like a route's
// match.prefix (e.g. /api/orders or /users/{id}). Two prefixes that match
// the same paths (/Admin and /admin/, /u/{a} and /u/{b}) are refused, with
// every other problem.
func CompilePrefixes(prefixes []string) (*Prefixes, error) {
	f := &File{Name: "prefixes"}
	ps := &Prefixes{}
	var errs []error
	seen := map[string]string{}
	for i, p := range prefixes {
		if reason := checkPattern(p); reason != "" {
			errs = append(errs, fmt.Errorf("prefix %s", reason))
			continue
		}
		if prev, dup := seen[prefixShape(p)]; dup {
			errs = append(errs, fmt.Errorf("prefix %q matches the same paths as %q", p, prev))
			continue
		}
		seen[prefixShape(p)] = p
		f.Routes = append(f.Routes, &Route{Name: p, Match: Match{Prefix: p}})
		ps.index = append(ps.index, i)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m, err := compile(f)
	if err != nil {
		return nil, err // not reached: equal shapes are refused above
	}
	ps.m = m
	return ps, nil
}

// prefixShape is what a prefix matches: its segments lower-cased, with
// every {parameter} alike.
func prefixShape(p string) string {
	segs := strings.Split(strings.Trim(strings.ToLower(p), "/"), "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// Match returns the index (in the slice given to CompilePrefixes) of the
// most specific prefix that covers path, or -1 when none does. path must
// come from NormalizePath.
func (ps *Prefixes) Match(path string) int {
	if i := ps.m.Match("", "", path, nil); i >= 0 {
		return ps.index[i]
	}
	return -1
}

// CutPrefix reports whether the path p falls under the literal prefix as a
// route's match.prefix matches it (on segment boundaries, literal segments
// case-insensitively, a segment's ;parameters ignored) and returns what
// follows the prefix's segments: "" or a path starting with /. The
// ;parameters of the segments cut go with them. Path rewrites (strip_prefix)
// use it, so they apply to every spelling that the route matched.
func CutPrefix(p, prefix string) (rest string, ok bool) {
	q := p
	for _, want := range strings.Split(strings.Trim(prefix, "/"), "/") {
		if want == "" {
			continue
		}
		if len(q) == 0 || q[0] != '/' {
			return p, false
		}
		q = q[1:]
		end := strings.IndexByte(q, '/')
		if end < 0 {
			end = len(q)
		}
		name, _, _ := strings.Cut(q[:end], ";")
		if !strings.EqualFold(name, want) {
			return p, false
		}
		q = q[end:]
	}
	return q, true
}
