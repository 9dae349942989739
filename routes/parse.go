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
func Parse(name string, data []byte) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, Errors{{File: name, Line: 1, Column: 1, Reason: "file is empty"}}
	}
	f := &File{Name: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlErrors(name, err)
	}
	f.Name = name
	f.pos = positions{}
	f.pos.index("", root.Content[0])
	if errs := f.validate(); len(errs) > 0 {
		return nil, errs.sorted()
	}
	return f, nil
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

func (f *File) errAt(field, format string, args ...any) *Error {
	line, col := f.pos.at(field)
	return &Error{File: f.Name, Line: line, Column: col, Field: field, Reason: fmt.Sprintf(format, args...)}
}
