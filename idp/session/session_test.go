package session_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/tokenhash"
	"golang.org/x/time/rate"
)

func wantLevel(t *testing.T, s *session.Session, level, user string) {
	t.Helper()
	if s.Level != level || s.UserID != user {
		t.Fatalf("session level %q user %q, want %q %q", s.Level, s.UserID, level, user)
	}
}

func wantGone(t *testing.T, in *instance, cookie, why string) {
	t.Helper()
	if s, err := in.lookup(cookie); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("%s: session %+v, %v; want ErrNoSession", why, s, err)
	}
}

// The walk of issue 10: first visit anonymous, a day later returning,
// login (new id, old id dead), the visitor linked to the user.
func TestFirstVisitReturnLogin(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	ann := in.user(t, "ann", "C-1")

	s, cookie, visitor := in.start(t, "")
	wantLevel(t, s, session.LevelAnonymous, "")
	if len(cookie) < 43 || len(visitor) < 43 || cookie == visitor {
		t.Fatalf("cookies %q %q: want two different 256-bit values", cookie, visitor)
	}
	if s.ID != tokenhash.Sum(cookie) || s.VisitorID != tokenhash.Sum(visitor) {
		t.Fatal("the session holds something other than the hashes of its cookies")
	}
	got, err := in.lookup(cookie)
	if err != nil || got.ID != s.ID {
		t.Fatalf("lookup: %+v, %v", got, err)
	}

	in.clk.Add(25 * time.Hour)
	wantGone(t, in, cookie, "an anonymous session a day later")
	s2, cookie2, visitor2 := in.start(t, visitor)
	wantLevel(t, s2, session.LevelReturning, "")
	if visitor2 != visitor {
		t.Fatal("a known visitor cookie was replaced instead of extended")
	}

	ls, lcookie := in.login(t, s2, "ann")
	wantLevel(t, ls, session.LevelLoggedOn, ann)
	if ls.ID == s2.ID || lcookie == cookie2 || ls.CustomerNumber != "C-1" || !ls.LoginAt.Equal(in.clk.Now()) {
		t.Fatalf("logged-on session %+v: want a new id, the customer number and the login time", ls)
	}
	wantGone(t, in, cookie2, "the session id from before login")
	if got, err := in.lookup(lcookie); err != nil || got.Level != session.LevelLoggedOn {
		t.Fatalf("logged-on lookup: %+v, %v", got, err)
	}

	// Logout ends the session; the browser comes back returning, as ann.
	if err := in.m.Logout(context.Background(), ls); err != nil {
		t.Fatal(err)
	}
	wantGone(t, in, lcookie, "after logout")
	in.clk.Add(24 * time.Hour)
	s3, _, _ := in.start(t, visitor)
	wantLevel(t, s3, session.LevelReturning, ann)
	if s3.CustomerNumber != "C-1" {
		t.Fatalf("returning session %+v: want ann's customer number", s3)
	}

	// A wrong password changes nothing.
	if _, _, err := in.m.Login(context.Background(), s3, "ann", "wrong", "192.0.2.1"); !errors.Is(err, session.ErrLoginFailed) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestLoggedOnEndsFourHoursAfterLoginEvenIfActive(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	in.user(t, "ann", "")
	s, _, _ := in.start(t, "")
	_, cookie := in.login(t, s, "ann")
	for range 11 { // 3 h 40 min of activity every 20 min
		in.clk.Add(20 * time.Minute)
		if _, err := in.lookup(cookie); err != nil {
			t.Fatalf("active at %s: %v", in.clk.Now(), err)
		}
	}
	in.clk.Add(20 * time.Minute)
	wantGone(t, in, cookie, "4 h after login")
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	in.user(t, "ann", "")
	s, _, _ := in.start(t, "")
	_, cookie := in.login(t, s, "ann")
	in.clk.Add(25 * time.Minute)
	if _, err := in.lookup(cookie); err != nil {
		t.Fatal(err)
	}
	in.clk.Add(25 * time.Minute) // 50 min after login, 25 after the last request
	if _, err := in.lookup(cookie); err != nil {
		t.Fatalf("activity did not extend the idle timeout: %v", err)
	}
	in.clk.Add(31 * time.Minute)
	wantGone(t, in, cookie, "31 min idle")

	_, anon, _ := in.start(t, "")
	in.clk.Add(31 * time.Minute)
	wantGone(t, in, anon, "an anonymous session 31 min idle")
}

// The level's cap holds on every look-up, whatever the stored row says.
func TestCapsHoldAgainstTheStoredRow(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	now := in.clk.Now()
	far := now.Add(100 * time.Hour)
	for name, s := range map[string]*store.Session{
		"logged on 5 h ago":        {Level: store.LevelLoggedOn, UserID: "u", LoginAt: now.Add(-5 * time.Hour), CreatedAt: now.Add(-5 * time.Hour)},
		"logged on, no login time": {Level: store.LevelLoggedOn, UserID: "u", CreatedAt: now},
		"anonymous for 2 days":     {Level: store.LevelAnonymous, CreatedAt: now.Add(-48 * time.Hour)},
	} {
		cookie := strings.Repeat("A", 42) + string(rune('a'+len(name)%26))
		s.ID, s.LastSeen, s.IdleExpires, s.Expires = tokenhash.Sum(cookie), now, far, far
		if err := in.st.CreateSession(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		wantGone(t, in, cookie, name)
	}
}

func TestVisitorCookieExtendedOnEachVisit(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	_, _, visitor := in.start(t, "")
	for day := range 4 { // a visit every 6 days: past the first week, still known
		in.clk.Add(6 * 24 * time.Hour)
		s, _, v := in.start(t, visitor)
		if s.Level != session.LevelReturning || v != visitor {
			t.Fatalf("visit %d: level %s, same cookie %v", day, s.Level, v == visitor)
		}
	}
	in.clk.Add(7*24*time.Hour + time.Second)
	s, _, v := in.start(t, visitor)
	if s.Level != session.LevelAnonymous || v == visitor {
		t.Fatalf("a week after the last visit: level %s, same cookie %v", s.Level, v == visitor)
	}
}

func TestMalformedAndUnknownCookies(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	_, good, _ := in.start(t, "")
	for _, c := range []string{"", "x", good + "A", good[:42] + ".", good[:42] + "=", strings.Repeat("A", 43), strings.Repeat("é", 43)} {
		wantGone(t, in, c, "cookie "+c)
		s, _, v := in.start(t, c)
		if s.Level != session.LevelAnonymous || v == c {
			t.Fatalf("visitor cookie %q: level %s", c, s.Level)
		}
	}
}

func TestLastSeenWrittenAtMostOnceAMinute(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	_, cookie, _ := in.start(t, "")
	for range 100 {
		in.clk.Add(500 * time.Millisecond)
		if _, err := in.lookup(cookie); err != nil {
			t.Fatal(err)
		}
	}
	if n := in.touches.n.Load(); n != 0 {
		t.Fatalf("%d writes in 50 s, want 0", n)
	}
	in.clk.Add(11 * time.Second)
	for range 10 {
		if _, err := in.lookup(cookie); err != nil {
			t.Fatal(err)
		}
	}
	if n := in.touches.n.Load(); n != 1 {
		t.Fatalf("%d writes in the second minute, want 1", n)
	}
	s, _ := in.st.GetSession(context.Background(), tokenhash.Sum(cookie))
	if !s.LastSeen.Equal(in.clk.Now()) || !s.IdleExpires.Equal(in.clk.Now().Add(session.DefaultIdle)) {
		t.Fatalf("stored session %+v", s)
	}
}

func TestUpdateAttributes(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	ctx := context.Background()
	s, cookie, _ := in.start(t, "")
	if err := in.m.Update(ctx, s, map[string]string{"cart": "3", "theme": "dark"}); err != nil {
		t.Fatal(err)
	}
	if err := in.m.Update(ctx, s, map[string]string{"cart": ""}); err != nil {
		t.Fatal(err)
	}
	got, err := in.lookup(cookie)
	if err != nil || !maps.Equal(got.Attrs, map[string]string{"theme": "dark"}) || !maps.Equal(s.Attrs, got.Attrs) {
		t.Fatalf("attributes %v (caller's %v), %v", got.Attrs, s.Attrs, err)
	}
	in.user(t, "ann", "")
	ls, _ := in.login(t, got, "ann")
	if !maps.Equal(ls.Attrs, got.Attrs) {
		t.Fatalf("attributes after login: %v", ls.Attrs)
	}
	if err := in.m.Update(ctx, got, map[string]string{"x": "y"}); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("update of the session ended by login: %v", err)
	}
}

func TestPasswordChangeAndDisablingEndEverySession(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	ctx := context.Background()
	ann, bob := in.user(t, "ann", ""), in.user(t, "bob", "")
	var annCookies []string
	var annVisitor string
	for range 3 {
		s, _, v := in.start(t, "")
		_, c := in.login(t, s, "ann")
		annCookies, annVisitor = append(annCookies, c), v
	}
	s, _, _ := in.start(t, "")
	_, bobCookie := in.login(t, s, "bob")
	if err := in.p.SetPassword(ctx, ann, "a-new-password"); err != nil {
		t.Fatal(err)
	}
	for _, c := range annCookies {
		wantGone(t, in, c, "ann's session after her password change")
	}
	if r, _, _ := in.start(t, annVisitor); r.UserID != "" {
		t.Fatalf("ann's visitor cookie still names her after the password change: %+v", r)
	}
	if _, err := in.lookup(bobCookie); err != nil {
		t.Fatalf("bob's session: %v", err)
	}
	if err := in.p.SetUserEnabled(ctx, bob, false); err != nil {
		t.Fatal(err)
	}
	wantGone(t, in, bobCookie, "a disabled user's session")
	if _, _, err := in.m.Login(ctx, nil, "bob", "password-bob", "192.0.2.1"); !errors.Is(err, session.ErrLoginFailed) {
		t.Fatalf("a disabled user logs in: %v", err)
	}

	events := map[string]int{}
	for _, e := range in.audit(t) {
		events[e.Event+"/"+e.Outcome]++
	}
	if events["login/ok"] != 4 || events["forced_logout/ok"] != 2 || events["login_failed/denied"] != 1 {
		t.Fatalf("audit trail %v", events)
	}
}

func TestLoginRateLimits(t *testing.T) {
	t.Parallel()
	in := newInstance(t, memBacking{memory.New()}, instanceOptions{tune: func(c *idp.Config) {
		c.LoginRate, c.LoginBurst = rate.Every(time.Hour), 3
		c.FailureRate, c.FailureBurst = rate.Every(time.Hour), 5
	}})
	ctx := context.Background()
	in.user(t, "ann", "")
	in.user(t, "bob", "")
	// Successful logins are not charged, per user nor per address.
	for range 10 {
		in.login(t, nil, "bob")
	}
	// Three wrong passwords for ann, from three addresses: her budget is
	// spent, even for the right password from a fourth.
	for i := range 3 {
		if _, _, err := in.m.Login(ctx, nil, "ann", "wrong", fmt.Sprint("198.51.100.", i)); !errors.Is(err, session.ErrLoginFailed) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, err := in.m.Login(ctx, nil, "ann", "password-ann", "203.0.113.9")
	var rl *session.RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, session.ErrRateLimited) || rl.RetryAfter <= 0 {
		t.Fatalf("ann over her budget: %v", err)
	}
	// One address guessing at many users spends its own budget.
	for i := range 5 {
		if _, _, err := in.m.Login(ctx, nil, fmt.Sprint("user", i), "wrong", "198.51.100.200"); !errors.Is(err, session.ErrLoginFailed) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, _, err := in.m.Login(ctx, nil, "bob", "password-bob", "198.51.100.200"); !errors.Is(err, session.ErrRateLimited) {
		t.Fatalf("the guessing address: %v", err)
	}
	in.login(t, nil, "bob") // from elsewhere, bob still logs in
}

func TestHousekeepingDeletesExpiredSessions(t *testing.T) {
	t.Parallel()
	in := newMemInstance(t)
	ctx := context.Background()
	_, old, _ := in.start(t, "")
	in.clk.Add(20 * time.Minute)
	_, live, _ := in.start(t, "")
	in.clk.Add(11 * time.Minute)
	if n := in.m.Cleanup(ctx, 1); n != 1 {
		t.Fatalf("deleted %d, want the idle session", n)
	}
	if _, err := in.st.GetSession(ctx, tokenhash.Sum(old)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session row: %v", err)
	}
	if _, err := in.lookup(live); err != nil {
		t.Fatal(err)
	}
}
