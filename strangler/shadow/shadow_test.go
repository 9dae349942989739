package shadow

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/strangler/waittest"
)

func jsonResp(status int, body string) *Response {
	return &Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body), Size: int64(len(body))}
}

func names(ds []diff) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func TestDiffs(t *testing.T) {
	t.Parallel()
	rule, err := NewRule([]string{"etag"}, nil, nil, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	text := func(s string) *Response {
		return &Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte(s), Size: int64(len(s))}
	}
	for _, c := range []struct {
		name string
		a, b *Response
		want []string
	}{
		{"same", jsonResp(200, `{"a":1}`), jsonResp(200, `{"a":1}`), nil},
		{"key order and spacing", jsonResp(200, `{"a":1,"b":[1,2]}`), jsonResp(200, `{ "b": [1, 2], "a": 1 }`), nil},
		{"numbers by value", jsonResp(200, `{"a":1,"b":1e2}`), jsonResp(200, `{"a":1.0,"b":100}`), nil},
		{"changed field", jsonResp(200, `{"a":1,"b":"x"}`), jsonResp(200, `{"a":1,"b":"y"}`), []string{"/b"}},
		{"missing and extra keys", jsonResp(200, `{"a":1,"b":2}`), jsonResp(200, `{"a":1,"c":2}`), []string{"/b", "/c"}},
		{"array element", jsonResp(200, `{"i":[{"id":1},{"id":2}]}`), jsonResp(200, `{"i":[{"id":1},{"id":3}]}`), []string{"/i/1/id"}},
		{"array length", jsonResp(200, `{"i":[1,2]}`), jsonResp(200, `{"i":[1]}`), []string{"/i"}},
		{"type", jsonResp(200, `{"a":"1"}`), jsonResp(200, `{"a":1}`), []string{"/a"}},
		{"escaped key", jsonResp(200, `{"a/b":1}`), jsonResp(200, `{"a/b":2}`), []string{"/a~1b"}},
		{"status", jsonResp(200, `{}`), jsonResp(404, `{}`), []string{"status"}},
		{"not JSON", jsonResp(200, `{"a":`), jsonResp(200, `{"a": `), []string{"body"}},
		{"text", text("abc"), text("abd"), []string{"body"}},
		{"text same", text("abc"), text("abc"), nil},
		{"header", &Response{Status: 200, Header: http.Header{"Etag": {"1"}}, Body: []byte{}}, &Response{Status: 200, Header: http.Header{"Etag": {"2"}}, Body: []byte{}}, []string{"header:Etag"}},
		{"hashed same", &Response{Status: 200, Hashed: true, Size: 3, Sum: sha256.Sum256([]byte("abc"))}, text("abc"), nil},
		{"hashed differs", &Response{Status: 200, Hashed: true, Size: 3, Sum: sha256.Sum256([]byte("abc"))}, text("abd"), []string{"body"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := names(rule.diffs(c.a, c.b)); !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestPatterns(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern string
		path    []string
		want    bool
	}{
		{"/meta/time", []string{"meta", "time"}, true},
		{"/meta", []string{"meta", "time"}, true},
		{"/meta/time", []string{"meta"}, false},
		{"/items/*/id", []string{"items", "3", "id"}, true},
		{"/items/*/id", []string{"items", "3", "name"}, false},
		{"/a~1b/~0c", []string{"a/b", "~c"}, true},
		{"", []string{"anything"}, true},
	} {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(c.path); got != c.want {
			t.Errorf("%q matches %q: %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	for _, bad := range []string{"meta", "/a~2", "/a~"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestRouteResults(t *testing.T) {
	t.Parallel()
	m := New(Options{Now: func() time.Time { return time.Unix(100, 0) }})
	r := m.Route("users", "orders", 10)
	if rep := r.Report(); rep.Parity != 1 || rep.Compared != 0 {
		t.Fatalf("nothing compared: %+v", rep)
	}
	rule, _ := NewRule(nil, []string{"/meta"}, nil, false, 0)
	r.Compare(rule, "GET", "/u", jsonResp(200, `{"a":1,"meta":1}`), jsonResp(200, `{"a":1,"meta":2}`))
	for i := range SampleSize + 5 {
		r.Compare(rule, "GET", "/u/"+strings.Repeat("x", i), jsonResp(200, `{"a":1}`), jsonResp(200, `{"a":2}`))
	}
	r.Fail()
	rep := r.Report()
	if rep.Compared != SampleSize+7 || rep.Matched != 1 || rep.Mismatches[KindBody] != SampleSize+5 || rep.Mismatches[KindError] != 1 {
		t.Fatalf("counts: %+v", rep)
	}
	if want := 1 / float64(SampleSize+7); rep.Parity != want {
		t.Fatalf("parity %v, want %v", rep.Parity, want)
	}
	if len(rep.Samples) != SampleSize || rep.Samples[0].Path != "/u/"+strings.Repeat("x", SampleSize+4) || !rep.Samples[0].At.Equal(time.Unix(100, 0)) {
		t.Fatalf("samples: %d, newest %+v", len(rep.Samples), rep.Samples[0])
	}
	if m.Route("users", "orders", 20) != r || m.Route("users", "payments", 20) == r {
		t.Fatal("a route keeps its results while its target stays, and only then")
	}
}

func TestLearnedNoiseCoversEveryArrayElement(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	r := m.Route("list", "svc", 100)
	rule, _ := NewRule(nil, nil, nil, true, 0)
	r.Learn(rule, jsonResp(200, `{"i":[{"t":1,"v":1}]}`), jsonResp(200, `{"i":[{"t":2,"v":1}]}`))
	r.Learn(rule, jsonResp(200, `{"x":1}`), jsonResp(500, `{"x":2}`)) // two statuses teach nothing
	r.Compare(rule, "GET", "/", jsonResp(200, `{"i":[{"t":1,"v":1},{"t":5,"v":1}],"x":1}`), jsonResp(200, `{"i":[{"t":3,"v":1},{"t":4,"v":1}],"x":1}`))
	r.Compare(rule, "GET", "/", jsonResp(200, `{"i":[{"t":1,"v":1}],"x":1}`), jsonResp(200, `{"i":[{"t":1,"v":2}],"x":1}`))
	rep := r.Report()
	if rep.Matched != 1 || !slices.Equal(rep.Noise, []string{"body:/i/*/t"}) || !slices.Equal(rep.Samples[0].Diffs, []string{"/i/0/v"}) {
		t.Fatalf("report: %+v", rep)
	}
}

func TestSampleBodies(t *testing.T) {
	t.Parallel()
	rule, _ := NewRule(nil, nil, []string{"/users/*/password"}, false, 0)
	body := `{"users":[{"name":"a","password":"p1"},{"name":"b","password":"p2"}]}`
	a := rule.answer(&Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"s=1"}},
		Body: []byte(body), Size: int64(len(body))})
	if strings.Contains(a.Body, "p1") || strings.Contains(a.Body, "p2") || !strings.Contains(a.Body, `"name":"b"`) || a.Header["Set-Cookie"] != "[redacted]" {
		t.Fatalf("answer: %+v", a)
	}
	// With redact set, a body it cannot redact shows by hash only.
	if b := rule.sampleBody(&Response{Header: http.Header{}, Body: []byte("password=p1"), Size: 11}); !strings.HasPrefix(b, "[11 bytes, sha256 ") {
		t.Fatalf("text body with redact: %s", b)
	}
	plain, _ := NewRule(nil, nil, nil, false, 0)
	long := strings.Repeat("é", SampleBody)
	if b := plain.sampleBody(&Response{Header: http.Header{}, Body: []byte(long), Size: int64(len(long))}); len(b) > SampleBody+20 || !strings.HasSuffix(b, "…[truncated]") {
		t.Fatalf("long body: %d bytes", len(b))
	}
}

func TestCaptureKeepsWithinItsBounds(t *testing.T) {
	t.Parallel()
	m := New(Options{Memory: 10 << 10})
	small := m.NewCapture(1 << 20)
	small.Write([]byte("hello"))
	if r := small.Response(200, nil); r.Hashed || string(r.Body) != "hello" {
		t.Fatalf("small: %+v", r)
	}
	big := m.NewCapture(1 << 20) // the budget (10 KiB) is smaller than its max
	data := strings.Repeat("x", 16<<10)
	for i := 0; i < len(data); i += 1000 {
		big.Write([]byte(data[i:min(i+1000, len(data))]))
	}
	r := big.Response(200, nil)
	if !r.Hashed || r.Sum != sha256.Sum256([]byte(data)) || r.Size != int64(len(data)) {
		t.Fatalf("over the budget: hashed %v size %d", r.Hashed, r.Size)
	}
	small.Release()
	big.Release()
	if h := m.held.Load(); h != 0 {
		t.Fatalf("%d bytes still held", h)
	}
	small.Write([]byte("after release"))
	if h := m.held.Load(); h != 0 {
		t.Fatalf("a write after Release took %d bytes", h)
	}
}

func TestMirrorRunsJobsWithItsOwnContext(t *testing.T) {
	t.Parallel()
	m := New(Options{Workers: 1, Queue: 1, Timeout: time.Minute})
	r := m.Route("r", "svc", 100)
	got := make(chan time.Time, 1)
	if !m.Offer(r, func(ctx context.Context) { d, _ := ctx.Deadline(); got <- d }) {
		t.Fatal("refused")
	}
	if d := waittest.Recv(t, "the job", got); time.Until(d) <= 0 || time.Until(d) > time.Minute {
		t.Fatalf("deadline %v", d)
	}
	m.Close()
	if m.Offer(r, func(context.Context) {}) || r.Report().Dropped != 1 {
		t.Fatal("an Offer after Close was taken")
	}
}
