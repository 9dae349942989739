package session_test

import (
	"context"
	"slices"
	"testing"
	"time"
)

// The IDP's browser sessions are logged-on sessions of the Manager: they
// start at the authentication's time, carry its methods, are found by
// their cookie and end like every session.
func TestBrowserSessions(t *testing.T) {
	in := newMemInstance(t)
	ctx := context.Background()
	id := in.user(t, "ann", "C-1")
	u, err := in.p.GetUser(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b := in.m.Browser()
	at := in.clk.Now().Add(-time.Hour)
	s, cookie, err := b.Login(ctx, nil, u, []string{"pwd", "otp"}, at, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if !s.LoginAt.Equal(at) || !s.Expires.Equal(at.Add(4*time.Hour)) || !slices.Equal(s.AMR, []string{"pwd", "otp"}) || s.Level != "logged_on" {
		t.Fatalf("session %+v", s)
	}
	found, err := b.Find(ctx, cookie)
	if err != nil || found == nil || found.ID != s.ID || !slices.Equal(found.AMR, s.AMR) {
		t.Fatalf("find: %+v %v", found, err)
	}
	if found, err := b.Find(ctx, "not-a-cookie"); found != nil || err != nil {
		t.Fatalf("find a malformed cookie: %+v %v", found, err)
	}
	// A time to come is now; a sign-in replaces the old session.
	s2, cookie2, err := b.Login(ctx, s, u, []string{"pwd"}, in.clk.Now().Add(time.Hour), "192.0.2.1")
	if err != nil || !s2.LoginAt.Equal(in.clk.Now()) {
		t.Fatalf("second login %+v %v", s2, err)
	}
	if found, _ := b.Find(ctx, cookie); found != nil {
		t.Fatal("the replaced session is still found")
	}
	if err := b.SetAttrs(ctx, s2, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if found, _ := b.Find(ctx, cookie2); found == nil || found.Attrs["k"] != "v" {
		t.Fatalf("attrs %+v", found)
	}
	if err := b.End(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if found, _ := b.Find(ctx, cookie2); found != nil {
		t.Fatal("an ended session is found")
	}
}
