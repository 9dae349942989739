package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const configDoc = "../../../../docs/configuration.md"

// keyPaths lists the key path of every field a configuration takes, with
// [] for list items: webhooks.adapters[].schemes[].type.
func keyPaths(prefix string, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		k, inline := yamlKey(f)
		if inline {
			out = append(out, keyPaths(prefix, f.Type)...)
			continue
		}
		if k == "" {
			continue
		}
		path := joinPath(prefix, k)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, keyPaths(path, ft)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(path+"[]", ft.Elem())...)
		default:
			out = append(out, path)
		}
	}
	return out
}

// Issue 8 item 18: docs/configuration.md documents every key the
// configuration takes (each key path in backticks), documents no key that
// does not exist, and every YAML example in it is accepted by the loader.
func TestConfigurationDocIsComplete(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, p := range keyPaths("", configType) {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("%s is not documented", p)
		}
	}
	// The first cell of every table row names keys that exist.
	cell := regexp.MustCompile("(?m)^\\| *`([a-z_.\\[\\]]+)`")
	for _, m := range cell.FindAllStringSubmatch(doc, -1) {
		if typeAt(m[1]) == nil {
			t.Errorf("%s is documented but the configuration has no such key", m[1])
		}
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("no YAML examples")
	}
	for i, m := range blocks {
		p := filepath.Join(t.TempDir(), "ficus.yaml")
		os.WriteFile(p, []byte(m[1]), 0o600)
		if _, _, err := Load(p, ForCheck); err != nil {
			t.Errorf("example %d is refused:\n%v\n%s", i+1, err, m[1])
		}
	}
}
