package shadow

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// DefaultMaxBody is the largest answer compared byte for byte or
// structurally; larger ones are compared by their SHA-256.
const DefaultMaxBody = 1 << 20

// maxDiffs bounds the differences one comparison reports.
const maxDiffs = 64

// Response is one answer as the comparison sees it.
type Response struct {
	Status int
	// Header holds the compared headers and Content-Type.
	Header http.Header
	// Body is the whole body, or nil when Hashed.
	Body []byte
	// Size is the body's length in bytes.
	Size int64
	// Hashed: the body was larger than the rule's MaxBody (or than the
	// room left in the Mirror's memory), so only Sum is known.
	Hashed bool
	// Sum is the body's SHA-256 when Hashed.
	Sum [32]byte
}

func (r *Response) sum() [32]byte {
	if r.Hashed {
		return r.Sum
	}
	return sha256.Sum256(r.Body)
}

func (r *Response) isJSON() bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// Rule is how one route compares: compiled from its shadow rule.
type Rule struct {
	// Headers are the response headers compared (canonical names).
	Headers []string
	// Ignore are body places never compared.
	Ignore []Pattern
	// Redact are body places whose values samples replace with
	// "[redacted]"; with any set, samples show non-JSON bodies by hash only.
	Redact []Pattern
	// LearnNoise asks the monolith twice and ignores what differs.
	LearnNoise bool
	// MaxBody is the largest body compared in full; larger are hashed.
	MaxBody int64
}

// NewRule compiles a route's comparison settings: headers compared (empty
// means Content-Type), JSON pointers to ignore and to redact, whether to
// learn noise, and the largest body compared in full (0 means
// DefaultMaxBody).
func NewRule(headers, ignore, redact []string, learnNoise bool, maxBody int64) (*Rule, error) {
	r := &Rule{LearnNoise: learnNoise, MaxBody: maxBody}
	if r.MaxBody <= 0 {
		r.MaxBody = DefaultMaxBody
	}
	if len(headers) == 0 {
		headers = []string{"Content-Type"}
	}
	for _, h := range headers {
		r.Headers = append(r.Headers, textproto.CanonicalMIMEHeaderKey(h))
	}
	for _, list := range []struct {
		in  []string
		out *[]Pattern
	}{{ignore, &r.Ignore}, {redact, &r.Redact}} {
		for _, p := range list.in {
			pt, err := ParsePattern(p)
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, pt)
		}
	}
	return r, nil
}

// Keep returns the headers of h that the rule compares (and Content-Type),
// copied.
func (r *Rule) Keep(h http.Header) http.Header {
	out := make(http.Header, len(r.Headers)+1)
	if v := h.Values("Content-Type"); len(v) > 0 {
		out["Content-Type"] = slices.Clone(v)
	}
	for _, k := range r.Headers {
		if v := h.Values(k); len(v) > 0 {
			out[k] = slices.Clone(v)
		}
	}
	return out
}

// diff is one difference between two answers.
type diff struct {
	kind string   // KindStatus, KindHeader or KindBody
	path []string // a header's name, or the body's JSON tokens
	// generic is the path with array indices as *: learned noise is kept
	// by it, so that noise at one element is noise at every element.
	generic []string
}

// String names the difference: status, header:NAME, body (the whole
// body), or a JSON pointer into the body.
func (d diff) String() string {
	switch {
	case d.kind == KindStatus:
		return "status"
	case d.kind == KindHeader:
		return "header:" + d.path[0]
	case len(d.path) == 0:
		return "body"
	}
	return pointerString(d.path)
}

// noiseKey is how learned noise names the difference.
func noiseKey(kind string, generic []string) string {
	if kind == KindHeader {
		return "header:" + generic[0]
	}
	return "body:" + pointerString(generic)
}

// diffs lists the differences between a and b, ignoring none.
func (r *Rule) diffs(a, b *Response) []diff {
	var out []diff
	if a.Status != b.Status {
		out = append(out, diff{kind: KindStatus})
	}
	for _, k := range r.Headers {
		if strings.Join(a.Header.Values(k), ", ") != strings.Join(b.Header.Values(k), ", ") {
			out = append(out, diff{kind: KindHeader, path: []string{k}, generic: []string{k}})
		}
	}
	whole := diff{kind: KindBody, path: []string{}, generic: []string{}}
	switch {
	case a.Hashed || b.Hashed || a.Size != int64(len(a.Body)) || b.Size != int64(len(b.Body)):
		if a.Size != b.Size || a.sum() != b.sum() {
			out = append(out, whole)
		}
	case bytes.Equal(a.Body, b.Body):
	case a.isJSON() && b.isJSON():
		va, errA := decodeJSON(a.Body)
		vb, errB := decodeJSON(b.Body)
		if errA != nil || errB != nil {
			out = append(out, whole)
			break
		}
		jsonDiffs(va, vb, nil, nil, &out)
	default:
		out = append(out, whole)
	}
	return out
}

var errTrailing = errors.New("data after the JSON value")

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return v, nil
}

// jsonDiffs appends the places where a and b differ, under path.
func jsonDiffs(a, b any, path, generic []string, out *[]diff) {
	if len(*out) >= maxDiffs {
		return
	}
	here := func() {
		*out = append(*out, diff{kind: KindBody, path: slices.Clone(path), generic: slices.Clone(generic)})
	}
	switch va := a.(type) {
	case map[string]any:
		vb, ok := b.(map[string]any)
		if !ok {
			here()
			return
		}
		keys := make([]string, 0, len(va)+len(vb))
		for k := range va {
			keys = append(keys, k)
		}
		for k := range vb {
			if _, dup := va[k]; !dup {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			x, inA := va[k]
			y, inB := vb[k]
			p, g := append(path, k), append(generic, k)
			if !inA || !inB {
				if len(*out) < maxDiffs {
					*out = append(*out, diff{kind: KindBody, path: slices.Clone(p), generic: slices.Clone(g)})
				}
				continue
			}
			jsonDiffs(x, y, p, g, out)
		}
	case []any:
		vb, ok := b.([]any)
		if !ok || len(va) != len(vb) {
			here()
			return
		}
		for i := range va {
			jsonDiffs(va[i], vb[i], append(path, indexToken(i)), append(generic, "*"), out)
		}
	case json.Number:
		vb, ok := b.(json.Number)
		if !ok || !sameNumber(va, vb) {
			here()
		}
	default: // string, bool, nil
		if a != b {
			here()
		}
	}
}

// sameNumber compares two JSON numbers by value (1.0 and 1 are the same).
func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, errA := strconv.ParseFloat(string(a), 64)
	y, errB := strconv.ParseFloat(string(b), 64)
	return errA == nil && errB == nil && x == y
}

// ignored reports whether the rule's configured ignore list covers d.
func (r *Rule) ignored(d diff) bool {
	if d.kind != KindBody {
		return false
	}
	for _, p := range r.Ignore {
		if p.Matches(d.path) {
			return true
		}
	}
	return false
}
