package routes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a rule file; larger files are refused unread.
const MaxFileSize = 16 << 20

// ParseFile reads, parses and validates a rule file.
func ParseFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, Errors{{File: path, Reason: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	return Parse(path, data)
}

// Parse parses and validates a rule file's contents. name is used in errors.
// On failure the error is an Errors value holding every problem found.
//
// A valid file costs one YAML parse: positions for the errors are read
// from a second parse only when there are errors to place.
func Parse(name string, data []byte) (*File, error) {
	f := &File{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Line: 1, Column: 1, Reason: "file is empty"}}
		}
		return nil, yamlErrors(name, err)
	}
	f.Name = name
	f.takePositions()
	if errs := f.validate(); len(errs) > 0 {
		return nil, locate(data, errs).sorted()
	}
	return f, nil
}

// locate gives each error that names a field (from errAt) the line and
// column of that field, or of its nearest ancestor present in the file.
func locate(data []byte, errs Errors) Errors {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return errs // cannot happen: the same text was decoded
	}
	pos := positions{}
	pos.index("", root.Content[0])
	for _, e := range errs {
		if e.Field != "" && e.Line == 0 {
			e.Line, e.Column = pos.at(e.Field)
		}
	}
	return errs
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErrors turns yaml.v3's errors into located Errors.
func yamlErrors(name string, err error) Errors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make(Errors, 0, len(msgs))
	for _, m := range msgs {
		e := &Error{File: name, Reason: strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Column = 1
			e.Reason = sm[2]
		}
		out = append(out, e)
	}
	return out.sorted()
}

// positions maps a field path (routes[0].split[1].to) to where its value
// stands in the file.
type positions map[string][2]int

func (p positions) index(path string, n *yaml.Node) {
	// An alias is recorded where it stands and not expanded: expanding
	// nested aliases is exponential ("billion laughs").
	p[path] = [2]int{n.Line, n.Column}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			child := k
			if path != "" {
				child = path + "." + k
			}
			p.index(child, n.Content[i+1])
			// A key's own position, for errors about the key.
			p[child+"#key"] = [2]int{n.Content[i].Line, n.Content[i].Column}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.index(fmt.Sprintf("%s[%d]", path, i), c)
		}
	}
}

// at finds the position of field, or of its nearest ancestor present in
// the file.
func (p positions) at(field string) (line, col int) {
	for f := field; ; {
		if lc, ok := p[f]; ok {
			return lc[0], lc[1]
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			if lc, ok := p[""]; ok {
				return lc[0], lc[1]
			}
			return 0, 0
		}
		f = f[:i]
	}
}

// takePositions moves the positions the upstreams' tls blocks noted into
// f, so that upstreams compare by their settings alone.
func (f *File) takePositions() {
	for name, u := range f.Upstreams {
		if u == nil || u.TLS == nil || u.TLS.at == nil {
			continue
		}
		if f.tlsAt == nil {
			f.tlsAt = map[string][2]int{}
		}
		for k, lc := range u.TLS.at {
			f.tlsAt["upstreams."+name+".tls."+k] = lc
		}
		u.TLS.at = nil
	}
}

// FieldError is a problem with a field of f found after parsing, when
// what the field names is used: the tls files of an upstream, read when a
// table is built. The error has the field's line and column when Parse
// noted them.
func (f *File) FieldError(field string, err error) *Error {
	e := &Error{File: f.Name, Field: field, Reason: err.Error()}
	if lc, ok := f.tlsAt[field]; ok {
		e.Line, e.Column = lc[0], lc[1]
	}
	return e
}

// errAt reports a problem with field. Its position is filled in by Parse
// (locate), which holds the text.
func (f *File) errAt(field, format string, args ...any) *Error {
	return &Error{File: f.Name, Field: field, Reason: fmt.Sprintf(format, args...)}
}
