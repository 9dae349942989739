package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"go.yaml.in/yaml/v3"
)

// Purpose says what a command uses the configuration for. Load checks the
// form of the whole file for every purpose but resolves only the secrets,
// and reads only the files, that the purpose needs: a command never
// demands a secret it does not use (ficus idp client create does not need
// the secret of the client it is about to create).
type Purpose int

const (
	// ForCheck checks the form only: no secret is resolved, no file read.
	ForCheck Purpose = iota
	// ForStore also resolves store.dsn (ficus migrate, ficus webhooks).
	ForStore
	// ForIDP also resolves and checks idp.key_encryption_key (ficus idp).
	ForIDP
	// ForServe resolves every secret, needs the route file, the TLS files
	// and an idp.issuer that clients can use (ficus serve).
	ForServe
)

// Error is one problem in a configuration.
type Error struct {
	// File is the configuration file; empty for a configuration built in
	// code (the demo).
	File string
	// Line is where the field stands in the file; 0 when it is not there
	// (a default, or a required field that is missing).
	Line int
	// Field is the key path, e.g. webhooks.adapters[0].max_body; empty
	// for problems of the whole file.
	Field  string
	Reason string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is every problem found in a configuration, in file order, one
// per line.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads a configuration file, checks it for purpose p (Validate) and
// reads what it refers to (Resolve). Relative paths in it (the route
// file, TLS files) are relative to the file's directory, and web-hook
// paths are normalised. On failure the error is an Errors value holding
// every problem of both steps at once: YAML type errors, invalid values,
// missing secrets and files, each with file:line where the field is in
// the file.
func Load(path string, p Purpose) (*Config, *Resolved, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	c, r, errs := loadData(path, data, p)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return c, r, nil
}

// Check loads a configuration file as Load does for purpose p, but
// returns the configuration as decoded even when it has problems (nil
// only when the file cannot be read or is not YAML), with every problem:
// ficus config validate goes on to check what the configuration refers
// to, so that one run reports everything.
func Check(path string, p Purpose) (*Config, Errors) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Reason: err.Error()}}
	}
	c, _, errs := loadData(path, data, p)
	return c, errs
}

// loadData is Load on the file's contents: c is nil only for a syntax error.
func loadData(path string, data []byte, p Purpose) (*Config, *Resolved, Errors) {
	c, ix, errs := decode(path, data)
	if c == nil {
		return nil, nil, errs
	}
	dir := dirOf(path)
	c.Routes.File = relTo(dir, c.Routes.File)
	c.Listen.TLS.CertFile = relTo(dir, c.Listen.TLS.CertFile)
	c.Listen.TLS.KeyFile = relTo(dir, c.Listen.TLS.KeyFile)
	c.Admin.TLS.CertFile = relTo(dir, c.Admin.TLS.CertFile)
	c.Admin.TLS.KeyFile = relTo(dir, c.Admin.TLS.KeyFile)
	rt := &c.Gateway.RemoteIDP.TLS
	rt.CAFile, rt.CertFile, rt.KeyFile = relTo(dir, rt.CAFile), relTo(dir, rt.CertFile), relTo(dir, rt.KeyFile)
	normalizeHookPaths(c)
	decodeErrs := errs
	r, resolveErrs := c.resolve(p)
	for _, e := range append(c.validate(p), resolveErrs...) {
		if covered(decodeErrs, e.Field) {
			continue // the value did not decode; that error says enough
		}
		e.File, e.Line = path, ix.line(e.Field)
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b Error) int { return a.Line - b.Line })
	}
	return c, r, errs
}

// normalizeHookPaths puts each web-hook adapter's path in the one form
// that the front door matches (routes.NormalizePath), so that it is shown
// (logs, errors) as it is served. A path that cannot be normalised is
// left as written: the check reports it.
func normalizeHookPaths(c *Config) {
	for i := range c.Webhooks.Adapters {
		if n, err := routes.NormalizePath(c.Webhooks.Adapters[i].Path); err == nil {
			c.Webhooks.Adapters[i].Path = n
		}
	}
}

// covered reports whether field, or a field above it, already has an
// error.
func covered(errs Errors, field string) bool {
	for _, e := range errs {
		if e.Field != "" && (field == e.Field || strings.HasPrefix(field, e.Field+".") || strings.HasPrefix(field, e.Field+"[")) {
			return true
		}
	}
	return false
}

// decode parses data over the defaults. Type errors do not stop it: every
// one is returned, translated, with the configuration decoded around them.
// A syntax error returns a nil configuration.
func decode(name string, data []byte) (*Config, *index, Errors) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, Errors{syntaxError(name, err)}
	}
	c := Defaults()
	ix := newIndex(&root)
	if root.Kind == 0 {
		return &c, ix, nil // an empty file: every default
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var errs Errors
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, nil, Errors{syntaxError(name, err)}
		}
		for _, m := range te.Errors {
			e := ix.translate(m)
			e.File = name
			errs = append(errs, e)
		}
	}
	return &c, ix, errs
}

var reLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxError(name string, err error) Error {
	e := Error{File: name, Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := reLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Reason = "not valid YAML: " + m[2]
	}
	return e
}

// index knows where each key path stands in the file.
type index struct {
	paths []string // in file order
	vals  map[string]*yaml.Node
	keys  map[string]*yaml.Node
}

func newIndex(root *yaml.Node) *index {
	ix := &index{vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		ix.walk("", root.Content[0])
	}
	return ix
}

func (ix *index) walk(path string, n *yaml.Node) {
	// Aliases are not followed: expanding nested aliases is exponential.
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := joinPath(path, k.Value)
			ix.paths = append(ix.paths, child)
			ix.keys[child], ix.vals[child] = k, v
			ix.walk(child, v)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			ix.paths = append(ix.paths, child)
			ix.vals[child] = v
			ix.walk(child, v)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// line is the line of field's key, or of its nearest ancestor in the
// file; 0 when none is there.
func (ix *index) line(field string) int {
	if ix == nil {
		return 0
	}
	for f := field; f != ""; {
		if k := ix.keys[f]; k != nil {
			return k.Line
		}
		if v := ix.vals[f]; v != nil {
			return v.Line
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

var (
	reUnmarshal = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into .+$")
	reUnknown   = regexp.MustCompile(`^line (\d+): field (.+) not found in type .+$`)
	reSetTwice  = regexp.MustCompile(`^line (\d+): field (.+) already set in type .+$`)
	reDupKey    = regexp.MustCompile(`^line (\d+): mapping key "(.*)" already defined at line (\d+)$`)
)

// translate turns one of yaml.v3's type errors, which name Go types, into
// a located message in the configuration's own terms.
func (ix *index) translate(msg string) Error {
	if m := reUnmarshal.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		field := ix.valueAt(line, m[2], m[3])
		got := strconv.Quote(m[3])
		switch m[2] {
		case "seq":
			got = "a list"
		case "map":
			got = "a mapping"
		}
		return Error{Line: line, Field: field, Reason: fmt.Sprintf("must be %s, not %s", describe(typeAt(field)), got)}
	}
	if m := reUnknown.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		field := ix.keyAt(line, m[2])
		return Error{Line: line, Field: field, Reason: unknownField(field, m[2])}
	}
	if m := reSetTwice.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{Line: line, Field: ix.keyAt(line, m[2]), Reason: "is set twice"}
	}
	if m := reDupKey.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{Line: line, Field: ix.keyAt(line, m[2]), Reason: "is set twice (first on line " + m[3] + ")"}
	}
	if m := reLine.FindStringSubmatch(msg); m != nil {
		// Our own unmarshalers' messages (durations, sizes, secrets).
		line, _ := strconv.Atoi(m[1])
		return Error{Line: line, Field: ix.valueAt(line, "str", ""), Reason: m[2]}
	}
	return Error{Reason: msg}
}

// valueAt finds the key path of the value on line that yaml.v3 described
// by its tag and (possibly shortened) text. Of several candidates (flow
// style puts many values on one line) it takes the one whose field does
// not take such a value.
func (ix *index) valueAt(line int, tag, text string) string {
	prefix, short := strings.CutSuffix(text, "...")
	var candidates []string
	for _, p := range ix.paths {
		v := ix.vals[p]
		if v.Line != line {
			continue
		}
		switch {
		case tag == "seq" && v.Kind == yaml.SequenceNode, tag == "map" && v.Kind == yaml.MappingNode:
			candidates = append(candidates, p)
		case v.Kind == yaml.ScalarNode && (text == "" || v.Value == text || short && strings.HasPrefix(v.Value, prefix)):
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if !takes(typeAt(p), tag) {
			return p
		}
	}
	if len(candidates) > 0 {
		return candidates[0]
	}
	return ""
}

// takes reports whether values of type t can be written as a YAML node
// with tag.
func takes(t reflect.Type, tag string) bool {
	if t == nil {
		return false
	}
	switch t {
	case durationType, routesDur, byteSizeType, secretType:
		return tag != "seq" && tag != "map"
	}
	switch k := t.Kind(); tag {
	case "seq":
		return k == reflect.Slice
	case "map":
		return k == reflect.Map || k == reflect.Struct
	case "str":
		return k == reflect.String
	case "int":
		return k == reflect.String || k >= reflect.Int && k <= reflect.Float64
	case "float":
		return k == reflect.String || k == reflect.Float32 || k == reflect.Float64
	case "bool":
		return k == reflect.String || k == reflect.Bool
	}
	return true
}

// keyAt finds the key path of key on line.
func (ix *index) keyAt(line int, key string) string {
	for _, p := range ix.paths {
		if k := ix.keys[p]; k != nil && k.Line == line && k.Value == key {
			return p
		}
	}
	return key
}

// unknownField explains a key that no field takes, naming the close
// spelling when there is one, else the keys that are accepted there.
func unknownField(field, key string) string {
	parent := ""
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		parent = field[:i]
	}
	known := yamlFields(typeAt(parent))
	squash := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	for _, k := range known {
		if squash(k) == squash(key) || distance(k, key) <= 2 {
			return fmt.Sprintf("unknown field (did you mean %s?)", k)
		}
	}
	if len(known) == 0 {
		return "unknown field"
	}
	return "unknown field; known here: " + strings.Join(known, ", ")
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var (
	configType   = reflect.TypeFor[Config]()
	durationType = reflect.TypeFor[time.Duration]()
	routesDur    = reflect.TypeFor[routes.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	secretType   = reflect.TypeFor[Secret]()
)

// typeAt is the Go type that takes the value at a key path, or nil.
func typeAt(path string) reflect.Type {
	t := configType
	for _, seg := range splitPath(path) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case seg == "[]":
			if t.Kind() != reflect.Slice {
				return nil
			}
			t = t.Elem()
		case t.Kind() == reflect.Map:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			f, ok := fieldByKey(t, seg)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// splitPath splits a.b[0].c (or a.b[].c) into a, b, [], c.
func splitPath(path string) []string {
	var out []string
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			out = append(out, name)
		}
		for n := strings.Count(rest, "]"); n > 0; n-- {
			out = append(out, "[]")
		}
	}
	return out
}

// yamlKey is the key a struct field takes in YAML: its tag's name, or its
// lowercased Go name without a tag (yaml.v3's rule); "" for "-".
func yamlKey(f reflect.StructField) (key string, inline bool) {
	tag := f.Tag.Get("yaml")
	name, opts, _ := strings.Cut(tag, ",")
	if name == "-" || !f.IsExported() {
		return "", false
	}
	if strings.Contains(opts, "inline") {
		return "", true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		switch k, inline := yamlKey(f); {
		case inline:
			if g, ok := fieldByKey(f.Type, key); ok {
				return g, true
			}
		case k == key:
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlFields lists the keys a struct type takes.
func yamlFields(t reflect.Type) []string {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		switch k, inline := yamlKey(f); {
		case inline:
			out = append(out, yamlFields(f.Type)...)
		case k != "":
			out = append(out, k)
		}
	}
	return out
}

// describe says in words what values a type takes.
func describe(t reflect.Type) string {
	switch t {
	case nil:
		return "another kind of value"
	case durationType, routesDur:
		return "a duration such as 30s, 5m or 1h30m"
	case byteSizeType:
		return "a size such as 1048576, 512KiB or 10MiB"
	case secretType:
		return "a secret reference (env:NAME or file:PATH)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a text"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping (key: value)"
	}
	return "another kind of value"
}
