package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// parseUpdate reads a web app's context update: one header line holding a
// JSON object whose values are strings (set) or null (clear), naming only
// allowed keys, at most MaxUpdateBytes long, and leaving the session's
// attributes within MaxUpdateBytes as well. It returns the changes, with
// "" for a key to clear (idp/session's Update). Any fault refuses the
// whole update.
func (st *Stage) parseUpdate(vals []string, current map[string]string) (map[string]string, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("%d update headers, want one", len(vals))
	}
	v := vals[0]
	if len(v) > st.o.MaxUpdateBytes {
		return nil, fmt.Errorf("update of %d bytes is over the limit of %d", len(v), st.o.MaxUpdateBytes)
	}
	var raw map[string]*string
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, errors.New("not a JSON object of strings and nulls")
	}
	if raw == nil {
		return nil, errors.New("not a JSON object of strings and nulls")
	}
	out := make(map[string]string, len(raw))
	merged := make(map[string]string, len(current)+len(raw))
	for k, v := range current {
		merged[k] = v
	}
	for k, p := range raw {
		if !st.keys[k] {
			return nil, fmt.Errorf("key %q is not in sessions.update_keys", k)
		}
		if p == nil || *p == "" {
			out[k] = ""
			delete(merged, k)
			continue
		}
		out[k] = *p
		merged[k] = *p
	}
	if n := len(asciiJSON(merged)); n > st.o.MaxUpdateBytes {
		return nil, fmt.Errorf("the session's attributes would take %d bytes, over the limit of %d", n, st.o.MaxUpdateBytes)
	}
	return out, nil
}

// asciiJSON encodes attributes as a JSON object in ASCII only (every other
// character escaped), fit for a header value whatever the values hold.
func asciiJSON(m map[string]string) string {
	b, _ := json.Marshal(m) // a map of strings always encodes
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	var sb strings.Builder
	for _, r := range string(b) {
		switch {
		case r < 0x80:
			sb.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&sb, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	return sb.String()
}
