package routes

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const limitHead = `version: 1
monolith: legacy
upstreams:
  legacy: {url: "http://127.0.0.1:1"}
  orders: {url: "http://127.0.0.1:2"}
`

func TestParseRate(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want Rate
		ps   float64
	}{
		{"100/s", Rate{100, time.Second}, 100},
		{"6000/m", Rate{6000, time.Minute}, 100},
		{"36/h", Rate{36, time.Hour}, 0.01},
		{"5/10s", Rate{5, 10 * time.Second}, 0.5},
		{" 1/s ", Rate{1, time.Second}, 1},
	}
	for _, tt := range good {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want || got.PerSecond() != tt.ps {
			t.Errorf("ParseRate(%q) = %+v (%v/s), %v; want %+v (%v/s)", tt.in, got, got.PerSecond(), err, tt.want, tt.ps)
		}
	}
	for _, in := range []string{"", "100", "100/d", "0/s", "-1/s", "x/s", "1.5/s", "1/0s", "1/25h", "1/1ns", "1000000001/s"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %+v, want an error", in, r)
		}
	}
	if s := (Rate{6000, time.Minute}).String(); s != "6000/m" {
		t.Errorf("String = %q", s)
	}
}

func TestRateLimitRules(t *testing.T) {
	t.Parallel()
	f, err := Parse("limits.yaml", []byte(limitHead+`rate_limits:
  api: {rate: 6000/m, by: client}
  per-address: {rate: 10/s, burst: 20, by: address, max_keys: 1000}
routes:
  - name: orders
    match: {prefix: /api/orders}
    to: orders
    auth: {policy: oauth2}
    rate_limit: api
  - name: search
    match: {prefix: /api/search}
    to: orders
    auth: {policy: optional, client: web}
    rate_limit: {use: api}
  - name: login
    match: {path: /login}
    to: legacy
    rate_limit: per-address
  - name: partners
    match: {prefix: /partners}
    to: legacy
    rate_limit: {rate: 5/10s, by: header, header: X-Api-Key, absent: shared}
  - name: open
    match: {prefix: /}
    to: legacy
`))
	if err != nil {
		t.Fatal(err)
	}
	byName := routesByName(f)
	if a, b := byName["orders"].Limit(), byName["search"].Limit(); a == nil || a != b || a.Name() != "api" {
		t.Fatalf("routes using one named limit share it: %p %p", a, b)
	}
	if l := byName["orders"].Limit(); l.BurstOrDefault() != 6000 || l.MaxKeysOrDefault() != DefaultRateLimitKeys || l.AbsentOrDefault() != "address" {
		t.Errorf("defaults: burst %d, keys %d, absent %s", l.BurstOrDefault(), l.MaxKeysOrDefault(), l.AbsentOrDefault())
	}
	if l := byName["login"].Limit(); l.BurstOrDefault() != 20 || l.MaxKeysOrDefault() != 1000 {
		t.Errorf("login: burst %d, keys %d", l.BurstOrDefault(), l.MaxKeysOrDefault())
	}
	if l := byName["partners"].Limit(); l.Name() != "" || l.Rate.PerSecond() != 0.5 || l.BurstOrDefault() != 5 || l.Header != "X-Api-Key" {
		t.Errorf("partners: %+v", l)
	}
	if byName["open"].Limit() != nil {
		t.Error("a route without rate_limit has a limit")
	}
}

// Every problem of every limit is reported at once, each at its line.
func TestRateLimitErrorsAllAtOnce(t *testing.T) {
	t.Parallel()
	src := limitHead + `rate_limits:
  bad-named: {rate: 10/s, by: header}
  chained: {use: bad-named}
routes:
  - name: a
    match: {prefix: /a}
    to: legacy
    rate_limit: {rate: 10/s}
  - name: b
    match: {prefix: /b}
    to: legacy
    rate_limit: {rate: 10/s, by: client}
  - name: c
    match: {prefix: /c}
    to: legacy
    rate_limit: nope
  - name: d
    match: {prefix: /d}
    to: legacy
    rate_limit: {use: bad-named, rate: 1/s}
  - name: e
    match: {prefix: /e}
    to: legacy
    rate_limit: {by: address, absent: shared, header: X-Key, burst: 2000000}
  - name: f
    match: {prefix: /f}
    to: legacy
    rate_limit: {rate: 2000000/s, by: header, header: X-Ficus-Key}
`
	_, err := Parse("limits.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v, want Errors", err)
	}
	want := []string{
		"limits.yaml:7:",  // bad-named: header missing
		"limits.yaml:8:",  // chained
		"limits.yaml:13:", // a: by required
		"limits.yaml:17:", // b: by client on passthrough
		"limits.yaml:21:", // c: unknown
		"limits.yaml:25:", // d: use with rate
		"limits.yaml:29:", // e: rate required, header, absent, burst
		"limits.yaml:33:", // f: reserved header, default burst too high
	}
	text := err.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("no error at %s in:\n%s", w, text)
		}
	}
	for _, reason := range []string{
		"bad-named.header: by: header needs the header's name",
		"chained.use: a limit of rate_limits is written out",
		"routes[0].rate_limit.by: is required",
		"routes[1].rate_limit.by: by: client needs auth policy oauth2, optional or jwt",
		`routes[2].rate_limit.use: unknown rate limit "nope"`,
		"routes[3].rate_limit.use: use names a limit of rate_limits; set no other field with it",
		"routes[4].rate_limit.rate: is required",
		"routes[4].rate_limit.header: is for by: header",
		"routes[4].rate_limit.absent: a request always has an address",
		"routes[4].rate_limit.burst: must be at most 1000000",
		`routes[5].rate_limit.header: "X-Ficus-Key": X-Ficus-* headers are reserved`,
		"routes[5].rate_limit.burst: the default burst",
	} {
		if !strings.Contains(text, reason) {
			t.Errorf("missing %q in:\n%s", reason, text)
		}
	}
	if len(errs) < 12 {
		t.Errorf("%d errors, want every one:\n%s", len(errs), text)
	}
}

func TestRateLimitYAMLErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ limit, want string }{
		{`{rate: 10/d, by: address}`, "limits.yaml:10:1: invalid rate \"10/d\""},
		{`{rate: 10/s, by: address, per: 1m}`, "limits.yaml:10:1: field per not found in rate_limit"},
		{`[10/s]`, "limits.yaml:10:1: rate_limit must be the name of one of rate_limits"},
	} {
		src := limitHead + "routes:\n  - name: a\n    match: {prefix: /a}\n    to: legacy\n    rate_limit: " + tt.limit + "\n"
		_, err := Parse("limits.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.limit, err, tt.want)
		}
	}
}

func TestDiffRateLimits(t *testing.T) {
	t.Parallel()
	file := func(named, own string) *File {
		f, err := Parse("x.yaml", []byte(limitHead+"rate_limits:\n  api: "+named+`
routes:
  - {name: a, match: {prefix: /a}, to: legacy, rate_limit: api}
  - {name: b, match: {prefix: /b}, to: legacy, rate_limit: `+own+`}
`))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	old := file("{rate: 10/s, by: address}", "{rate: 1/s, by: address}")
	if d := Diff(old, file("{rate: 10/s, by: address}", "{rate: 1/s, by: address}")); len(d) != 0 {
		t.Fatalf("same files differ: %+v", d)
	}
	var b strings.Builder
	_ = WriteDiff(&b, Diff(old, file("{rate: 20/s, by: address}", "{rate: 2/s, by: address}")))
	for _, w := range []string{"~ rate_limit api\n    rate: 10/s -> 20/s", "~ route a\n    rate_limit api changed", "~ route b\n    rate_limit: {rate: 1/s, by: address} -> {rate: 2/s, by: address}"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("diff lacks %q:\n%s", w, b.String())
		}
	}
}
