package legacy

import (
	"errors"
	"github.com/ficus-gw/ficus/routes"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/idp/legacy/legacytest"
	"golang.org/x/crypto/bcrypt"
)

func TestVerifyFormats(t *testing.T) {
	t.Parallel()
	const pw = "s3cret-pass"
	b := legacytest.Bcrypt(t, pw)
	costly, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	costly[4], costly[5] = '1', '7' // cost 17: over the bound
	both := []string{FormatBcrypt, FormatDjangoPBKDF2}
	for _, tc := range []struct {
		name    string
		formats []string
		hash    string
		pw      string
		want    bool
		wantErr bool
	}{
		{"bcrypt 2a", both, b, pw, true, false},
		{"bcrypt 2b", both, "$2b$" + b[4:], pw, true, false},
		{"bcrypt 2y (PHP)", both, "$2y$" + b[4:], pw, true, false},
		{"Spring {bcrypt}", both, "{bcrypt}" + b, pw, true, false},
		{"bcrypt wrong password", both, b, pw + "x", false, false},
		{"bcrypt counts 72 bytes, as PHP does", both, legacytest.Bcrypt(t, strings.Repeat("a", 72)), strings.Repeat("a", 72) + "ignored", true, false},
		{"django", both, legacytest.Django(pw, "salt123"), pw, true, false},
		{"django wrong password", both, legacytest.Django(pw, "salt123"), "other", false, false},
		{"django not accepted", []string{FormatBcrypt}, legacytest.Django(pw, "salt123"), pw, false, true},
		{"bcrypt not accepted", []string{FormatDjangoPBKDF2}, b, pw, false, true},
		{"bcrypt cost over the bound", both, string(costly), pw, false, true},
		{"django iterations over the bound", both, "pbkdf2_sha256$99999999$salt$" + strings.Repeat("A", 44), pw, false, true},
		{"django hash too long", both, "pbkdf2_sha256$1000$salt$" + strings.Repeat("A", 400), pw, false, true},
		{"md5 refused", both, "5f4dcc3b5aa765d61d8327deb882cf99", pw, false, true},
		{"Spring {noop} refused", both, "{noop}" + pw, pw, false, true},
		{"empty refused", both, "", pw, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newVerifier(tc.formats)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.verify(tc.hash, tc.pw)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("verify = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errUnknownFormat) {
					t.Errorf("error %v is not errUnknownFormat", err)
				}
				if tc.pw != "" && strings.Contains(err.Error(), tc.pw) || len(tc.hash) > 12 && strings.Contains(err.Error(), tc.hash[8:]) {
					t.Errorf("error shows the password or the hash: %v", err)
				}
			}
		})
	}
}

func TestUnknownFormatNameRefused(t *testing.T) {
	t.Parallel()
	for _, f := range [][]string{nil, {"md5"}, {"bcrypt", "sha1"}} {
		if _, err := newVerifier(f); err == nil || !strings.Contains(err.Error(), "hash_formats") {
			t.Errorf("%v: got %v", f, err)
		}
	}
}

func TestPointer(t *testing.T) {
	t.Parallel()
	doc := map[string]any{"a": map[string]any{"b/c": "x", "m~n": []any{"zero", "one"}}}
	for _, tc := range []struct {
		ptr  string
		want any
		ok   bool
	}{
		{"/a/b~1c", "x", true},
		{"/a/m~0n/1", "one", true},
		{"/a/m~0n/01", nil, false},
		{"/a/m~0n/2", nil, false},
		{"/a/nope", nil, false},
		{"/a/b~1c/deeper", nil, false},
	} {
		p, err := routes.ParseJSONPointer(tc.ptr)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Find(doc)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: got %v, %v", tc.ptr, got, ok)
		}
	}
	for _, bad := range []string{"a/b", "/a~2", "/a~"} {
		if _, err := routes.ParseJSONPointer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
