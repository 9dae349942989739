package bridge

import (
	"errors"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/routes"
)

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
