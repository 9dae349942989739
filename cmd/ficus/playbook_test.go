package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/routes"
)

// Issue 11: every YAML example of the route-store pages is valid: a rule
// file (it has a version) for the route parser, anything else for the
// process config loader.
func TestRouteStoreDocExamplesParse(t *testing.T) {
	t.Parallel()
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	for _, page := range []string{"migration-playbook.md", "operations.md"} {
		b, err := os.ReadFile(filepath.Join("../../docs", page))
		if err != nil {
			t.Fatal(err)
		}
		blocks := block.FindAllStringSubmatch(string(b), -1)
		if len(blocks) == 0 {
			t.Fatalf("%s: no YAML examples", page)
		}
		rules := 0
		for i, m := range blocks {
			name := fmt.Sprintf("%s example %d", page, i+1)
			if strings.HasPrefix(m[1], "version:") {
				rules++
				if _, err := routes.Parse(name, []byte(m[1])); err != nil {
					t.Errorf("%v\n%s", err, m[1])
				}
				continue
			}
			p := filepath.Join(t.TempDir(), "ficus.yaml")
			os.WriteFile(p, []byte(m[1]), 0o600)
			if _, _, err := config.Load(p, config.ForCheck); err != nil {
				t.Errorf("%s is refused:\n%v\n%s", name, err, m[1])
			}
		}
		if page == "migration-playbook.md" && rules < 2 {
			t.Errorf("%s: %d rule files, want the first and the last", page, rules)
		}
	}
}
