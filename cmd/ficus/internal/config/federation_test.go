package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Issue 13: every configuration example of the federated login section
// of docs/oidc.md is accepted.
func TestFederationDocExamples(t *testing.T) {
	t.Parallel()
	examples := loadDocSectionExamples(t, "oidc.md", "Login through an upstream identity provider")
	if len(examples) == 0 {
		t.Fatal("no YAML examples")
	}
	for i, c := range examples {
		if c != nil && len(c.IDP.Federation.Providers) == 0 {
			t.Errorf("example %d configures no upstream provider", i+1)
		}
	}
}

// loadDocSectionExamples loads every YAML block of the section of
// docs/FILE headed "## heading" as a configuration file, for the check
// only; an example that is refused is an error of t and nil in the result.
func loadDocSectionExamples(t *testing.T, file, heading string) []*Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../../../docs", file))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## "+heading+"\n")
	if !ok {
		t.Fatalf("no section ## %s in %s", heading, file)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var out []*Config
	for i, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1) {
		p := filepath.Join(t.TempDir(), "ficus.yaml")
		if err := os.WriteFile(p, []byte(m[1]), 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := Load(p, ForCheck)
		if err != nil {
			t.Errorf("%s, example %d is refused:\n%v\n%s", file, i+1, err, m[1])
			c = nil
		}
		out = append(out, c)
	}
	return out
}

// Issue 13: idp.federation is checked with the rest, every problem by its
// key path.
func TestFederationChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, given string
		want        []string // empty: accepted
	}{
		{"minimal", `idp:
  federation:
    providers: [{name: corp, issuer: https://id.example.com, client_id: ficus}]
`, nil},
		{"every problem", `idp:
  federation:
    providers:
      - {name: Corp!, issuer: http://id.example.com, client_secret: plain-secret, claims: {sub: sub}, keep_upstream_tokens: true}
      - {name: ok, issuer: https://id.example.com, client_id: x, roles: {claim: groups}}
      - {name: ok, issuer: https://id.example.com, client_id: x, roles: {map: [{level: x}]}}
`, []string{
			"idp.federation.providers[0].name: must be 1 to 32 lower-case letters",
			"idp.federation.providers[0].issuer: must be https",
			"idp.federation.providers[0].client_id: is required",
			"idp.federation.providers[0].client_secret: must be a secret reference",
			"idp.federation.providers[0].claims: sub is a claim ficus sets itself",
			"idp.federation.providers[0].keep_upstream_tokens: needs idp.key_encryption_key",
			"idp.federation.providers[1].roles.map: is required with roles.claim",
			"idp.federation.providers[2].name: \"ok\" names two providers",
			"idp.federation.providers[2].issuer: https://id.example.com is the issuer of two providers",
			"idp.federation.providers[2].roles.claim: is required with roles.map",
			"idp.federation.providers[2].roles.map[0].group: is required",
		}},
		{"no IDP", `idp:
  enabled: false
  federation:
    providers: [{name: corp, issuer: https://id.example.com, client_id: ficus}]
gateway: {remote_idp: {issuer: https://idp.example.com, client_id: gw, client_secret: env:X}}
`, []string{"idp.federation: needs the IDP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ficus.yaml")
			os.WriteFile(p, []byte("routes: {file: routes.yaml}\n"+tc.given), 0o600)
			_, _, err := Load(p, ForCheck)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}
