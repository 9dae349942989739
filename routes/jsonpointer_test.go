package routes

import (
	"encoding/json"
	"testing"
)

func mustPointer(t *testing.T, s string) JSONPointer {
	t.Helper()
	p, err := ParseJSONPointer(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RFC 6901 section 5: every example pointer and what it finds.
func TestPointerRFC6901Examples(t *testing.T) {
	t.Parallel()
	var doc any
	if err := json.Unmarshal([]byte(`{"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8}`), &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		given string
		want  string
	}{
		{"/foo", `["bar","baz"]`}, {"/foo/0", `"bar"`}, {"/", "0"}, {"/a~1b", "1"}, {"/c%d", "2"}, {"/e^f", "3"},
		{"/g|h", "4"}, {"/i\\j", "5"}, {"/k\"l", "6"}, {"/ ", "7"}, {"/m~0n", "8"},
	}
	for _, tt := range tests {
		v, ok := mustPointer(t, tt.given).Find(doc)
		got, _ := json.Marshal(v)
		if !ok || string(got) != tt.want {
			t.Errorf("%q: %s, %v; want %s", tt.given, got, ok, tt.want)
		}
	}
	if v, ok := mustPointer(t, "").Find(doc); !ok || v == nil {
		t.Error("the empty pointer is the whole document")
	}
	for _, miss := range []string{"/foo/2", "/foo/01", "/foo/-", "/foo/x", "/nope", "/foo/0/deeper", "/~01"} {
		if _, ok := mustPointer(t, miss).Find(doc); ok {
			t.Errorf("%q found something", miss)
		}
	}
}

func TestJSONPointerRefusesAndWritesBack(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"a/b", "/a~2", "/a~"} {
		if _, err := ParseJSONPointer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, s := range []string{"", "/a~1b/m~0n/0", "/"} {
		if got := mustPointer(t, s).String(); got != s {
			t.Errorf("%q written back as %q", s, got)
		}
	}
}
