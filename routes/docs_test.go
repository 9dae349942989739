package routes

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// docFile turns one YAML example of docs/routes.md into a whole rule file:
// a whole file stays as it is; a list of routes gets the upstreams legacy
// (the monolith) and orders; anything else is the fields of one route,
// which gets a match and a target unless the example sets them.
func docFile(example string) (string, error) {
	var keys map[string]any
	if err := yaml.Unmarshal([]byte(example), &keys); err != nil {
		return "", err
	}
	const head = "version: 1\nmonolith: legacy\nupstreams:\n  legacy: {url: \"http://127.0.0.1:1\"}\n  orders: {url: \"http://127.0.0.1:2\"}\n"
	switch {
	case keys["version"] != nil:
		return example, nil
	case keys["routes"] != nil:
		return head + example, nil
	}
	var b strings.Builder
	b.WriteString(head + "routes:\n  - name: example\n")
	if keys["match"] == nil {
		b.WriteString("    match: {prefix: /api/orders}\n")
	}
	if keys["to"] == nil && keys["split"] == nil {
		b.WriteString("    to: legacy\n")
	}
	for _, line := range strings.Split(strings.TrimRight(example, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String(), nil
}

// Issue 8, item 18: every YAML example in docs/routes.md is valid, so the
// reference cannot document what the parser refuses.
func TestRoutesDocExamplesParse(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/routes.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := yamlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d YAML examples in docs/routes.md, want at least 5", len(blocks))
	}
	for i, m := range blocks {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			src, err := docFile(m[1])
			if err == nil {
				_, err = Parse(fmt.Sprintf("docs/routes.md example %d", i+1), []byte(src))
			}
			if err != nil {
				t.Fatalf("%v\nexample:\n%s", err, m[1])
			}
		})
	}
}

// Issue 10: every whole rule file in docs/legacy-session-bridge.md (a YAML
// example with version) is valid, and there is one per kind of monolith.
func TestBridgeDocExamplesParse(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/legacy-session-bridge.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, m := range yamlBlock.FindAllStringSubmatch(string(doc), -1) {
		if !strings.HasPrefix(m[1], "version:") {
			continue
		}
		n++
		f, err := Parse(fmt.Sprintf("docs/legacy-session-bridge.md example %d", i+1), []byte(m[1]))
		if err != nil {
			t.Errorf("%v\nexample:\n%s", err, m[1])
			continue
		}
		if len(f.Bridges) == 0 {
			t.Errorf("example %d has no bridge", i+1)
		}
	}
	if n < 4 {
		t.Fatalf("found %d rule files in docs/legacy-session-bridge.md, want the general one and Java, PHP and Rails", n)
	}
}
