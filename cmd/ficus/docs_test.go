package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docFiles are the documents a user reads.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs: %v", err)
	}
	return append(files, "../../README.md")
}

var (
	codeBlock  = regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
	inlineCode = regexp.MustCompile("`([^`\n]+)`")
	// A command line: ficus or bin/ficus, then a subcommand.
	commandLine = regexp.MustCompile(`(?:^|[\s$(])(?:bin/)?ficus +([a-z][^\n]*)`)
	// A shell line continued on the next one.
	continuation = regexp.MustCompile(`\\\n\s*`)
)

// docCommands extracts the ficus command lines shown in a Markdown text:
// in code blocks and in inline code.
func docCommands(text string) []string {
	var out []string
	add := func(code string) {
		code = continuation.ReplaceAllString(code, " ")
		for _, line := range strings.Split(code, "\n") {
			for _, m := range commandLine.FindAllStringSubmatch(line, -1) {
				out = append(out, m[1])
			}
		}
	}
	for _, m := range codeBlock.FindAllStringSubmatch(text, -1) {
		add(m[1])
	}
	for _, m := range inlineCode.FindAllStringSubmatch(codeBlock.ReplaceAllString(text, ""), -1) {
		add(m[1])
	}
	return out
}

// checkCommand walks a command line through the real command tree: each
// word is a subcommand until the first argument, and every flag exists
// where it is used.
func checkCommand(root *cobra.Command, line string) string {
	cmd := root
	args := false
	for _, w := range strings.Fields(line) {
		if strings.IndexAny(w, "#|;&><\\") == 0 || strings.HasPrefix(w, "…") || strings.HasPrefix(w, "...") || strings.HasPrefix(w, "2>") {
			break // a comment, a pipe, a redirection, an ellipsis: the command ends
		}
		w = strings.Trim(w, "[]()'\"")
		if name, ok := strings.CutPrefix(w, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if lookupFlag(cmd, func(fs *pflag.FlagSet) bool { return fs.Lookup(name) != nil }) {
				continue
			}
			return "no flag --" + name + " on `" + cmd.CommandPath() + "`"
		}
		if name, ok := strings.CutPrefix(w, "-"); ok && len(name) == 1 {
			if lookupFlag(cmd, func(fs *pflag.FlagSet) bool { return fs.ShorthandLookup(name) != nil }) {
				continue
			}
			return "no flag -" + name + " on `" + cmd.CommandPath() + "`"
		}
		if args || w == "" {
			continue
		}
		if alts := strings.Split(w, "|"); len(alts) > 1 && !cmd.Runnable() {
			// list|delete: alternatives, each a subcommand; the rest of the
			// line is read as arguments.
			for _, a := range alts {
				if sub, _, err := cmd.Find([]string{a}); err != nil || sub == cmd {
					return "no subcommand " + a + " of `" + cmd.CommandPath() + "`"
				}
			}
			cmd, _, _ = cmd.Find(alts[:1])
			args = true
			continue
		}
		if sub, _, err := cmd.Find([]string{w}); err == nil && sub != cmd {
			cmd = sub
			continue
		}
		if !cmd.Runnable() {
			return "no subcommand " + w + " of `" + cmd.CommandPath() + "`"
		}
		args = true
	}
	if cmd == root {
		return "no subcommand"
	}
	return ""
}

func lookupFlag(cmd *cobra.Command, has func(*pflag.FlagSet) bool) bool {
	cmd.InitDefaultHelpFlag()
	return has(cmd.Flags()) || has(cmd.InheritedFlags())
}

// Issue 8 item 18: every ficus command line the docs and the README show
// exists, with the flags they show.
func TestDocsShowOnlyCommandsThatExist(t *testing.T) {
	t.Parallel()
	root := newRoot(io.Discard, io.Discard)
	n := 0
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range docCommands(string(b)) {
			n++
			if why := checkCommand(root, line); why != "" {
				t.Errorf("%s: `ficus %s`: %s", filepath.Base(f), line, why)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d command lines found in the docs", n)
	}
	// The checker itself refuses what does not exist.
	for _, bad := range []string{"serve --conf x", "routes check x", "idp client make x", "webhooks purge --age 1h", "idp frob"} {
		if checkCommand(root, bad) == "" {
			t.Errorf("`ficus %s` passes the check", bad)
		}
	}
}

// Issue 8 item 18: docs/benchmarks.md says how many targets the load script
// compares.
func TestBenchmarksDocTargetCount(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("../../strangler/bench/load.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`ORDER=\(\$\{TARGETS:-([^}]*)\}\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("no default target list in load.sh")
	}
	targets := strings.Fields(string(m[1]))
	doc, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	counts := regexp.MustCompile(`(\d+) targets`).FindAllSubmatch(doc, -1)
	if len(counts) == 0 {
		t.Fatal("benchmarks.md gives no target count")
	}
	for _, c := range counts {
		if string(c[1]) != strconv.Itoa(len(targets)) {
			t.Errorf("benchmarks.md says %s targets; load.sh runs %d: %v", c[1], len(targets), targets)
		}
	}
	for _, name := range targets {
		if !strings.Contains(string(doc), "| "+name+" |") {
			t.Errorf("target %s is not described in benchmarks.md", name)
		}
	}
}
