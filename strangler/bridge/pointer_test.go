package bridge

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/routes"
)

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
		v, ok := parsePointer(tt.given).find(doc)
		got, _ := json.Marshal(v)
		if !ok || string(got) != tt.want {
			t.Errorf("%q: %s, %v; want %s", tt.given, got, ok, tt.want)
		}
	}
	if v, ok := parsePointer("").find(doc); !ok || v == nil {
		t.Error("the empty pointer is the whole document")
	}
	for _, miss := range []string{"/foo/2", "/foo/01", "/foo/-", "/foo/x", "/nope", "/foo/0/deeper", "/~01"} {
		if _, ok := parsePointer(miss).find(doc); ok {
			t.Errorf("%q found something", miss)
		}
	}
}

func TestMappingRead(t *testing.T) {
	t.Parallel()
	logged := "LOGGED_IN"
	withEquals := newMapping(routes.BridgeMapping{UserID: "/id", LoggedOn: &routes.LoggedOn{Pointer: "/state", Equals: &logged}})
	byID := newMapping(routes.BridgeMapping{UserID: "/id", CustomerNumber: "/cn"})
	tests := []struct {
		name    string
		m       mapping
		given   string
		wantID  string // "" for not logged on
		garbage bool
	}{
		{"equals matches", withEquals, `{"state": "LOGGED_IN", "id": "7"}`, "7", false},
		{"equals differs", withEquals, `{"state": "ANONYMOUS", "id": "7"}`, "", false},
		{"equals, flag absent", withEquals, `{"id": "7"}`, "", false},
		{"no flag: id present", byID, `{"id": 42, "cn": 9001}`, "42", false},
		{"no flag: id null", byID, `{"id": null}`, "", false},
		{"no flag: id empty", byID, `{"id": ""}`, "", false},
		{"no flag: not an object", byID, `[1, 2]`, "", false},
		{"negative id", byID, `{"id": -1}`, "", true},
		{"id is a boolean", byID, `{"id": true}`, "", true},
		{"id too long", byID, `{"id": "` + strings.Repeat("9", maxIDLen+1) + `"}`, "", true},
		{"customer number is a list", byID, `{"id": "1", "cn": [1]}`, "", true},
		{"empty body", byID, ``, "", true},
		{"truncated", byID, `{"id": "1"`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.m.read([]byte(tt.given))
			if tt.garbage {
				if !errors.Is(err, errGarbage) {
					t.Fatalf("error %v, want garbage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantID == "" && id != nil:
				t.Fatalf("logged on as %+v", id)
			case tt.wantID != "" && (id == nil || id.userID != tt.wantID):
				t.Fatalf("identity %+v, want id %s", id, tt.wantID)
			}
		})
	}
}

// Whatever the monolith answers, reading it never panics, and a logged-on
// answer always has a user id.
func FuzzReadAnswer(f *testing.F) {
	for _, s := range []string{`{"authenticated": true, "user": {"id": "1", "name": "A", "roles": ["x"]}}`, `{"authenticated": false}`,
		`{"user": {"id": 10.5}}`, `[]`, `null`, `"x"`, `{"authenticated": "yes"}`} {
		f.Add([]byte(s))
	}
	m := newMapping(routes.BridgeMapping{UserID: "/user/id", CustomerNumber: "/user/cn", LoggedOn: &routes.LoggedOn{Pointer: "/authenticated"},
		Claims: map[string]string{"name": "/user/name", "roles": "/user/roles"}})
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := m.read(body)
		if err != nil && !errors.Is(err, errGarbage) {
			t.Fatalf("error %v is not errGarbage", err)
		}
		if id != nil && id.userID == "" {
			t.Fatal("logged on without a user id")
		}
	})
}
