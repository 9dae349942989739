package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docs/architecture.md maps each behaviour to the files and functions that
// own it. This keeps the map from rotting: every linked file exists, and
// every `Func` or `Type.Method` named after a link is defined in that file.
func TestArchitectureMapPointsAtRealCode(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Where each behaviour lives")
	if !ok {
		t.Fatal("docs/architecture.md has no behaviour map")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// A link, then the names that follow it up to the next link or arrow.
	link := regexp.MustCompile(`\]\((\.\./[^)]+)\)([^\[→|]*)`)
	name := regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_]*)(?:\\.([A-Za-z_][A-Za-z0-9_]*))?`")
	checked := 0
	for _, m := range link.FindAllStringSubmatch(section, -1) {
		path := filepath.Join("../../docs", m[1])
		src, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("architecture.md links %s: %v", m[1], err)
			continue
		}
		for _, n := range name.FindAllStringSubmatch(m[2], -1) {
			var def *regexp.Regexp
			if n[2] == "" {
				def = regexp.MustCompile(`(?m)^func ` + n[1] + `[\[(]`)
			} else {
				def = regexp.MustCompile(`(?m)^func \(\w+ \*?` + n[1] + `\) ` + n[2] + `\(`)
			}
			if !def.Match(src) {
				t.Errorf("architecture.md names %s in %s, which does not define it", n[0], m[1])
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d names checked: the map's format changed and this test no longer reads it", checked)
	}
}
