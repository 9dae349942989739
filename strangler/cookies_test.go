package strangler

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// Issue 10: ficus's own cookies (the web session's) are bearer
// credentials that no upstream needs: they are removed from every
// outbound request, the monolith's too, and every other cookie reaches
// the upstream as the browser sent it.
func TestOwnedCookiesReachNoUpstream(t *testing.T) {
	t.Parallel()
	fx := newTestGateway(t, baseRules+"  - {name: orders, match: {prefix: /orders}, to: orders}\n", func(o *Options) {
		o.OwnedCookies = []string{"ficus_session", "ficus_visitor"}
	})
	cookies := []string{"JSESSIONID=abc; ficus_session=secret1; theme=dark", "ficus_visitor=secret2", "lang=de;x=1"}
	want := []string{"JSESSIONID=abc; theme=dark", "lang=de;x=1"}
	hdr := []string{}
	for _, c := range cookies {
		hdr = append(hdr, "Cookie", c)
	}
	t.Run("monolith", func(t *testing.T) {
		_, b := fx.do(t, "GET", "/headers", nil, hdr...)
		if got := httpbinHeaders(t, b)["Cookie"]; !reflect.DeepEqual(got, want) {
			t.Fatalf("the monolith got Cookie %q, want %q", got, want)
		}
	})
	t.Run("new service", func(t *testing.T) {
		_, b := fx.do(t, "GET", "/orders/1", nil, hdr...)
		var s seen
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if got := s.Header["Cookie"]; !reflect.DeepEqual(got, want) {
			t.Fatalf("the service got Cookie %q, want %q", got, want)
		}
	})
}

func TestStripCookies(t *testing.T) {
	t.Parallel()
	names := []string{"ficus_session", "ficus_visitor"}
	tests := []struct {
		name        string
		given, want []string
	}{
		{"none owned, kept byte for byte", []string{"a=1;b=2 ;  c=3"}, []string{"a=1;b=2 ;  c=3"}},
		{"a longer name is not ours", []string{"my_ficus_session=1;ficus_sessionx=2"}, []string{"my_ficus_session=1;ficus_sessionx=2"}},
		{"ours in the middle", []string{"a=1; ficus_session=s; b=2"}, []string{"a=1; b=2"}},
		{"only ours: the line goes", []string{"ficus_session=s; ficus_visitor=v"}, nil},
		{"two of ours, same name", []string{"ficus_session=s1; ficus_session=s2; a=1"}, []string{"a=1"}},
		{"empty pairs dropped", []string{"ficus_session=s;; a=1;"}, []string{"a=1"}},
		{"several lines", []string{"a=1", "ficus_visitor=v", "b=2; ficus_session=s"}, []string{"a=1", "b=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": append([]string(nil), tt.given...)}
			stripCookies(h, names)
			if got := h["Cookie"]; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%q -> %q, want %q", tt.given, got, tt.want)
			}
			if _, ok := h["Cookie"]; ok != (tt.want != nil) {
				t.Fatalf("Cookie present = %v", ok)
			}
		})
	}
}
