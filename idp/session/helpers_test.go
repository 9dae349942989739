package session_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/revocation"
	"github.com/ficus-gw/ficus/idp/session"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
	"golang.org/x/time/rate"
)

// clock is an injected clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backing is what a test instance runs on: the memory or the PostgreSQL
// store, which keep both the IDP and the sessions.
type backing interface {
	idp.Storage
	session.Storage
	JPTKeysStorage() idp.KeyStorage
}

type memBacking struct{ *memory.Store }

func (b memBacking) JPTKeysStorage() idp.KeyStorage { return b.JPTKeys() }

// touchCounter is the real store, counting the LastSeen writes.
type touchCounter struct {
	session.Storage
	n atomic.Int64
}

func (c *touchCounter) TouchSession(ctx context.Context, hash string, lastSeen, idle time.Time) error {
	c.n.Add(1)
	return c.Storage.TouchSession(ctx, hash, lastSeen, idle)
}

// instance is one ficus process: a provider and a session manager on a
// shared store.
type instance struct {
	p *idp.Provider
	m *session.Manager
	// jptKeys sign the JPTs of m.
	jptKeys *idp.KeyManager
	clk     *clock
	st      backing
	// touches counts the LastSeen writes of m.
	touches *touchCounter
}

type instanceOptions struct {
	notices revocation.Notices
	clk     *clock
	tune    func(*idp.Config)
	session func(*session.Options)
	jptAlg  string // the JPT keys' algorithm; default EdDSA
}

const issuer = "https://ficus.test"

func newInstance(t testing.TB, st backing, o instanceOptions) *instance {
	t.Helper()
	ctx := context.Background()
	if o.clk == nil {
		o.clk = newClock()
	}
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{Now: o.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := idp.Config{Issuer: issuer, Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		LoginRate: rate.Every(time.Hour), LoginBurst: 100, FailureRate: rate.Every(time.Hour), FailureBurst: 100}
	if o.tune != nil {
		o.tune(&cfg)
	}
	p, err := idp.New(idp.Options{Config: cfg, Store: st, Keys: keys, Now: o.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ko := idp.KeyOptions{Now: o.clk.Now, Alg: o.jptAlg}
	jptKeys, err := idp.NewKeyManager(ctx, st.JPTKeysStorage(), ko)
	if err != nil {
		t.Fatal(err)
	}
	tc := &touchCounter{Storage: st}
	so := session.Options{Store: tc, Users: p, Keys: jptKeys, Issuer: issuer, Notices: o.notices, Now: o.clk.Now}
	if o.session != nil {
		o.session(&so)
	}
	m, err := session.New(so)
	if err != nil {
		t.Fatal(err)
	}
	p.OnUserRevoked(m.EndUser)
	return &instance{p: p, m: m, jptKeys: jptKeys, clk: o.clk, st: st, touches: tc}
}

func newMemInstance(t testing.TB) *instance {
	return newInstance(t, memBacking{memory.New()}, instanceOptions{})
}

func (in *instance) user(t testing.TB, name, customer string) string {
	t.Helper()
	id, err := in.p.CreateUser(context.Background(), idp.NewUser{Username: name, Password: "password-" + name, CustomerNumber: customer})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// start begins a session as a browser without cookies would.
func (in *instance) start(t testing.TB, visitor string) (*session.Session, string, string) {
	t.Helper()
	s, c, v, err := in.m.Start(context.Background(), visitor)
	if err != nil {
		t.Fatal(err)
	}
	return s, c, v
}

func (in *instance) login(t testing.TB, s *session.Session, name string) (*session.Session, string) {
	t.Helper()
	ns, c, err := in.m.Login(context.Background(), s, name, "password-"+name, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	return ns, c
}

func (in *instance) lookup(cookie string) (*session.Session, error) {
	return in.m.Lookup(context.Background(), cookie)
}

// audit returns the events the provider recorded (the memory store only).
func (in *instance) audit(t testing.TB) []store.AuditEvent {
	t.Helper()
	in.p.Close() // flushes the trail
	return in.st.(memBacking).AuditEvents()
}
