package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ficus-gw/ficus/routes"
)

// Outcomes of a "who am I" call, the outcome label of
// ficus_bridge_whoami_total.
const (
	outcomeOK        = "ok"        // a logged-on user
	outcomeAnonymous = "anonymous" // not logged on
	outcomeError     = "error"     // down, 5xx, garbage: the request gets 503
	outcomeTimeout   = "timeout"   // no whole answer in time: 503
	outcomeBusy      = "busy"      // too many calls in flight: 503, not sent
)

// errGarbage is an answer ficus cannot read as the configured mapping.
var errGarbage = errors.New("bridge: unusable who-am-I answer")

// identity is what the monolith said about a session; nil is not
// logged on.
type identity struct {
	userID, customerNumber string
	claims                 map[string]any
}

// mapping is a bridge's Mapping with its pointers parsed once.
type mapping struct {
	userID, customerNumber routes.JSONPointer
	loggedOn               routes.JSONPointer // nil: logged on when the user id is there
	equals                 *string
	claims                 map[string]routes.JSONPointer
}

// mustPointer parses a pointer the rule file's validation has checked.
func mustPointer(s string) routes.JSONPointer {
	p, _ := routes.ParseJSONPointer(s)
	return p
}

func newMapping(m routes.BridgeMapping) mapping {
	out := mapping{userID: mustPointer(m.UserID), claims: map[string]routes.JSONPointer{}}
	if m.CustomerNumber != "" {
		out.customerNumber = mustPointer(m.CustomerNumber)
	}
	if l := m.LoggedOn; l != nil {
		out.loggedOn, out.equals = mustPointer(l.Pointer), l.Equals
	}
	for name, p := range m.Claims {
		out.claims[name] = mustPointer(p)
	}
	return out
}

// whoami asks the bridge's endpoint about a session (session is the
// bridge cookie's name=value pairs, as the client sent them) and returns
// the identity, nil when not logged on, and the outcome.
func (st *state) whoami(ctx context.Context, s *Stage, session string) (*identity, string, error) {
	ctx, cancel := context.WithTimeout(ctx, st.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, st.method, st.cfg.WhoamiURL(), nil)
	if err != nil {
		return nil, outcomeError, err
	}
	// Only the bridge cookie: the monolith learns nothing else about the
	// caller's other cookies.
	req.Header["Cookie"] = []string{session}
	req.Header["Accept"] = []string{"application/json"}
	req.Header["User-Agent"] = []string{"ficus-bridge"}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, failure(ctx, err), err
	}
	defer resp.Body.Close()
	switch c := resp.StatusCode; {
	case c == http.StatusUnauthorized, c == http.StatusForbidden, c >= 300 && c < 400:
		// Not logged on: a redirect (to a login page) is never followed.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, s.o.MaxBody))
		return nil, outcomeAnonymous, nil
	case c != http.StatusOK:
		return nil, outcomeError, fmt.Errorf("bridge: who-am-I answered %d", c)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.o.MaxBody+1))
	if err != nil {
		return nil, failure(ctx, err), err
	}
	if int64(len(body)) > s.o.MaxBody {
		return nil, outcomeError, fmt.Errorf("%w: body larger than %d bytes", errGarbage, s.o.MaxBody)
	}
	id, err := st.mapping.read(body)
	if err != nil {
		return nil, outcomeError, err
	}
	if id == nil {
		return nil, outcomeAnonymous, nil
	}
	return id, outcomeOK, nil
}

// failure is the outcome of a call that got no whole answer.
func failure(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return outcomeTimeout
	}
	return outcomeError
}

// read maps a JSON answer: nil when it says not logged on, errGarbage
// when it is not JSON or a mapped value has the wrong type.
func (m *mapping) read(body []byte) (*identity, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", errGarbage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON value", errGarbage)
	}
	uid, hasUID, err := text(m.userID, doc, "user_id")
	if err != nil {
		return nil, err
	}
	if m.loggedOn != nil {
		on, err := m.isLoggedOn(doc)
		if err != nil || !on {
			return nil, err
		}
		if !hasUID {
			return nil, fmt.Errorf("%w: logged on without a user id", errGarbage)
		}
	} else if !hasUID {
		return nil, nil
	}
	id := &identity{userID: uid}
	if m.customerNumber != nil {
		if id.customerNumber, _, err = text(m.customerNumber, doc, "customer_number"); err != nil {
			return nil, err
		}
	}
	for name, p := range m.claims {
		v, ok := p.Find(doc)
		if !ok || v == nil {
			continue
		}
		if !claimValue(v) {
			return nil, fmt.Errorf("%w: claim %s is not a string, number, boolean or list of strings", errGarbage, name)
		}
		if id.claims == nil {
			id.claims = map[string]any{}
		}
		id.claims[name] = v
	}
	return id, nil
}

// isLoggedOn reads the logged-on flag: a boolean (absent or null is
// false), or with equals a value compared as text.
func (m *mapping) isLoggedOn(doc any) (bool, error) {
	v, ok := m.loggedOn.Find(doc)
	if !ok || v == nil {
		return false, nil
	}
	if m.equals != nil {
		s, isScalar := scalarText(v)
		return isScalar && s == *m.equals, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, fmt.Errorf("%w: logged_on is %T, not a boolean", errGarbage, v)
	}
	return b, nil
}

// maxIDLen bounds a user id or customer number.
const maxIDLen = 256

// text reads an id: a string or an integer; absent, null and "" are
// none. Other types are garbage.
func text(p routes.JSONPointer, doc any, field string) (string, bool, error) {
	v, ok := p.Find(doc)
	if !ok || v == nil {
		return "", false, nil
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		if strings.ContainsAny(string(x), ".eE-+") {
			return "", false, fmt.Errorf("%w: %s %s is not an integer", errGarbage, field, x)
		}
		s = string(x)
	default:
		return "", false, fmt.Errorf("%w: %s is %T, not a string or an integer", errGarbage, field, v)
	}
	if len(s) > maxIDLen {
		return "", false, fmt.Errorf("%w: %s longer than %d bytes", errGarbage, field, maxIDLen)
	}
	return s, s != "", nil
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

func claimValue(v any) bool {
	switch x := v.(type) {
	case string, json.Number, bool:
		return true
	case []any:
		for _, e := range x {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}
