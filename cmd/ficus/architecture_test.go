package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docs/architecture.md maps each behaviour to the files and functions that
// own it, and each package to what it owns. This keeps the page from
// rotting: every link and every repository path on it exists, every `Func`
// or `Type.Method` named after a link in the behaviour map is defined in
// the linked file, and every file the package table names (`serve.go`,
// `grant_*.go`) is in the row's packages.
func TestArchitectureMapPointsAtRealCode(t *testing.T) {
	t.Parallel()
	const root, docs = "../..", "../../docs"
	b, err := os.ReadFile(filepath.Join(docs, "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }

	t.Run("links", func(t *testing.T) {
		links := regexp.MustCompile(`\]\(([^)#:]+)(?:#[^)]*)?\)`).FindAllStringSubmatch(doc, -1)
		for _, m := range links {
			if !exists(filepath.Join(docs, m[1])) {
				t.Errorf("architecture.md links %s, which does not exist", m[1])
			}
		}
		if len(links) < 30 {
			t.Fatalf("only %d links: the page's format changed and this test no longer reads it", len(links))
		}
	})

	t.Run("functions", func(t *testing.T) {
		section := sectionOf(t, doc, "Where each behaviour lives")
		// A link, then the names that follow it up to the next link or arrow.
		link := regexp.MustCompile(`\]\((\.\./[^)]+)\)([^\[→|]*)`)
		name := regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_]*)(?:\\.([A-Za-z_][A-Za-z0-9_]*))?`")
		checked := 0
		for _, m := range link.FindAllStringSubmatch(section, -1) {
			src, err := os.ReadFile(filepath.Join(docs, m[1]))
			if err != nil {
				continue // reported by links
			}
			for _, n := range name.FindAllStringSubmatch(m[2], -1) {
				def := regexp.MustCompile(`(?m)^func ` + n[1] + `[\[(]`)
				if n[2] != "" {
					def = regexp.MustCompile(`(?m)^func \(\w+ \*?` + n[1] + `(?:\[[^\]]*\])?\) ` + n[2] + `\(`)
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
	})

	t.Run("paths", func(t *testing.T) {
		// `strangler/verify/jwks`, `idp/store/{memory,postgres}`: repository
		// paths, from a top-level folder.
		path := regexp.MustCompile("`((?:cmd|routes|strangler|idp|adapters|testdata|docs)(?:/[A-Za-z0-9_./{},*-]*)?)`")
		checked := 0
		for _, m := range path.FindAllStringSubmatch(doc, -1) {
			for _, p := range expandBraces(m[1]) {
				if matches, _ := filepath.Glob(filepath.Join(root, p)); len(matches) == 0 {
					t.Errorf("architecture.md names %s, which does not exist", p)
				}
				checked++
			}
		}
		if checked < 20 {
			t.Fatalf("only %d paths checked: the page's format changed and this test no longer reads it", checked)
		}
	})

	t.Run("package files", func(t *testing.T) {
		// A row of the package table: its packages, then the files it names.
		pkgs := regexp.MustCompile("`([a-z/]+)`")
		file := regexp.MustCompile("`([A-Za-z0-9_*]+\\.go)`")
		checked := 0
		for _, row := range strings.Split(sectionOf(t, doc, "Packages"), "\n") {
			cells := strings.Split(row, "|")
			if len(cells) < 3 {
				continue
			}
			var dirs []string
			for _, m := range pkgs.FindAllStringSubmatch(cells[1], -1) {
				dirs = append(dirs, m[1])
			}
			for _, f := range file.FindAllStringSubmatch(strings.Join(cells[2:], "|"), -1) {
				found := false
				for _, d := range dirs {
					if matches, _ := filepath.Glob(filepath.Join(root, d, f[1])); len(matches) > 0 {
						found = true
					}
				}
				if !found {
					t.Errorf("the package table names %s for %v, which has no such file", f[1], dirs)
				}
				checked++
			}
		}
		if checked < 5 {
			t.Fatalf("only %d files checked: the table's format changed and this test no longer reads it", checked)
		}
	})
}

// sectionOf returns the text of the "## title" section of a markdown page.
func sectionOf(t *testing.T, doc, title string) string {
	t.Helper()
	_, s, ok := strings.Cut(doc, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("docs/architecture.md has no section %q", title)
	}
	s, _, _ = strings.Cut(s, "\n## ")
	return s
}

// expandBraces expands one {a,b} group: idp/store/{memory,postgres}.
func expandBraces(p string) []string {
	pre, rest, ok := strings.Cut(p, "{")
	if !ok {
		return []string{p}
	}
	alts, post, _ := strings.Cut(rest, "}")
	var out []string
	for _, a := range strings.Split(alts, ",") {
		out = append(out, pre+a+post)
	}
	return out
}
