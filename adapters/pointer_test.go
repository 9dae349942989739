package adapters

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// decodedPointer is the event id as a full encoding/json decode of the
// body finds it (what pointer did before it walked the body instead).
func decodedPointer(body []byte, ptr string) string {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return ""
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch node := doc.(type) {
		case map[string]any:
			doc = node[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(node) {
				return ""
			}
			doc = node[i]
		default:
			return ""
		}
	}
	switch v := doc.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

var pointerCases = []struct{ name, body, ptr string }{
	{"stripe", `{"id":"evt_1","type":"x","data":{"object":{"id":"pi_1"}}}`, "/id"},
	{"nested", `{"id":"evt_1","data":{"object":{"id":"pi_1"}}}`, "/data/object/id"},
	{"array", `{"events":[{"id":"EV1"},{"id":"EV2"}]}`, "/events/1/id"},
	{"array out of range", `{"events":[{"id":"EV1"}]}`, "/events/1/id"},
	{"array bad index", `{"events":[{"id":"EV1"}]}`, "/events/x/id"},
	{"negative index", `{"events":[{"id":"EV1"}]}`, "/events/-1/id"},
	{"number", `{"event_id":12345678901234567890}`, "/event_id"},
	{"float as written", `{"event_id":1.50e3}`, "/event_id"},
	{"not a string", `{"id":{"a":1}}`, "/id"},
	{"bool", `{"id":true}`, "/id"},
	{"null", `{"id":null}`, "/id"},
	{"missing", `{"type":"x"}`, "/id"},
	{"repeated name: the last counts", `{"id":"first","id":"second"}`, "/id"},
	{"repeated name, last not a string", `{"id":"first","id":{"x":1}}`, "/id"},
	{"repeated parent", `{"d":{"id":"a"},"d":{"x":"b"}}`, "/d/id"},
	{"escaped name", `{"a/b":{"m~n":"v"}}`, "/a~1b/m~0n"},
	{"escapes in the value", `{"id":"ev\u00e9\"\\n"}`, "/id"},
	{"invalid utf-8", "{\"id\":\"ev\xff1\"}", "/id"},
	{"not JSON", `id=evt_1`, "/id"},
	{"truncated after the id", `{"id":"evt_1","data":{`, "/id"},
	{"trailing garbage", `{"id":"evt_1"} trailing`, "/id"},
	{"top-level array", `[{"id":"a"}]`, "/0/id"},
	{"scalar document", `"evt"`, "/id"},
	{"empty", ``, "/id"},
	{"deep skip", `{"x":[[[[{"id":"no"}]]]],"id":"yes"}`, "/id"},
	{"empty name", `{"":{"":"v"}}`, "//"},
}

// The walk answers exactly as the full decode did, for ids and for what
// is not an id (a body that is not JSON, a repeated name, a number).
func TestPointerAnswersAsAFullDecode(t *testing.T) {
	for _, tc := range pointerCases {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := pointer([]byte(tc.body), tc.ptr), decodedPointer([]byte(tc.body), tc.ptr); got != want {
				t.Fatalf("pointer(%q, %q) = %q, the full decode gives %q", tc.body, tc.ptr, got, want)
			}
		})
	}
}

func FuzzPointerAnswersAsAFullDecode(f *testing.F) {
	for _, tc := range pointerCases {
		f.Add(tc.body, tc.ptr)
	}
	f.Fuzz(func(t *testing.T, body, ptr string) {
		if ptr == "" {
			return
		}
		if got, want := pointer([]byte(body), ptr), decodedPointer([]byte(body), ptr); got != want {
			t.Fatalf("pointer(%q, %q) = %q, the full decode gives %q", body, ptr, got, want)
		}
	})
}

// The 1 KiB Stripe event of the load test (idp/bench/idpload).
var benchEvent = []byte(`{"id":"evt_3_1764540000000000000_12","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":1200,"pad":"` +
	strings.Repeat("x", 900) + `"}}}`)

func BenchmarkEventID(b *testing.B) {
	for _, bc := range []struct {
		name string
		f    func([]byte, string) string
	}{{"walk", pointer}, {"decode", decodedPointer}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.f(benchEvent, "/id") == "" {
					b.Fatal("no id")
				}
			}
		})
	}
}
