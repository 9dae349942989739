package revisions_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/ficus-gw/ficus/strangler/waittest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// loads records what a follower loaded: the weight of route orders of
// each rule set, in order, on a channel.
type loads struct {
	ch     chan int
	refuse func(*routes.File) error
}

func (l *loads) load(f *routes.File) error {
	if l.refuse != nil {
		if err := l.refuse(f); err != nil {
			return err
		}
	}
	l.ch <- f.Routes[0].Split[0].Weight
	return nil
}

// syncBuffer is a log destination safe to read while the follower writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestFollower starts a follower on st (Sync, then Run until the test
// ends) with the poll interval given, and returns it with its loads and log.
func newTestFollower(t *testing.T, st *revisions.Store, poll time.Duration, reg prometheus.Registerer) (*revisions.Follower, *loads, *syncBuffer) {
	t.Helper()
	l := &loads{ch: make(chan int, 100)}
	log := &syncBuffer{}
	f, err := revisions.NewFollower(revisions.FollowerOptions{Store: st, Load: l.load, PollInterval: poll, Registerer: reg,
		Logger: slogTo(log)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f, l, log
}

// waitListening waits until n connections LISTEN on the revisions channel.
func waitListening(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	waittest.For(t, "the followers to LISTEN", func() bool {
		var got int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN ' || $1`, pgx.Identifier{revisions.Channel}.Sanitize()).Scan(&got)
		return err == nil && got == n
	})
}

func TestFollowerLoadsAtStartAndOnNotice(t *testing.T) {
	t.Parallel()
	st, pool := newTestStore(t)
	apply(t, st, rules(10), 0)
	reg := prometheus.NewRegistry()
	// An hour between polls: only the notice can carry the change in time.
	f, l, _ := newTestFollower(t, st, time.Hour, reg)
	if got := waittest.Recv(t, "the first load", l.ch); got != 10 || f.Revision() != 1 {
		t.Fatalf("loaded %d, revision %d", got, f.Revision())
	}
	waitListening(t, pool, 1)
	apply(t, st, rules(40), 1)
	if got := waittest.Recv(t, "revision 2", l.ch); got != 40 {
		t.Fatalf("loaded %d", got)
	}
	waittest.For(t, "revision 2 served", func() bool { return f.Revision() == 2 })
	if v := gaugeOf(t, reg); v != 2 {
		t.Fatalf("ficus_routes_revision = %v", v)
	}
	// The heartbeat says so, once it is sent after the load.
	var ins []revisions.Instance
	var err error
	waittest.For(t, "the heartbeat of revision 2", func() bool {
		ins, _, err = st.Instances(context.Background())
		return err == nil && len(ins) == 1 && ins[0].Revision == 2
	})
	if ins[0].PID == 0 || ins[0].Hostname == "" {
		t.Fatalf("instances: %+v %v", ins, err)
	}
}

func gaugeOf(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ficus_routes_revision" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no ficus_routes_revision metric")
	return 0
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// An instance whose LISTEN connection is killed catches up once it is
// back, although the notice of the change went to nobody.
func TestFollowerResyncsAfterALostConnection(t *testing.T) {
	t.Parallel()
	st, pool := newTestStore(t)
	apply(t, st, rules(10), 0)
	f, l, log := newTestFollower(t, st, time.Hour, nil)
	waittest.Recv(t, "the first load", l.ch)
	waitListening(t, pool, 1)
	// Kill the listener, then apply at once: the notice is sent while the
	// listener is gone (it reconnects after a backoff of 100 ms), so only
	// the resync after the reconnect can carry the change (the poll is an
	// hour away).
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN ' || $1`, pgx.Identifier{revisions.Channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	apply(t, st, rules(70), 1)
	if got := waittest.Recv(t, "revision 2 after the reconnect", l.ch); got != 70 || f.Revision() == 0 {
		t.Fatalf("loaded %d", got)
	}
	waittest.For(t, "the lost connection to be logged", func() bool { return strings.Contains(log.String(), "listener lost its connection") })
}

// A stored revision that the instance refuses (impossible through Apply,
// written here by hand) is logged, the old rules stay, and it is not tried
// again at every poll.
func TestFollowerKeepsTheRulesOnARefusedRevision(t *testing.T) {
	t.Parallel()
	st, pool := newTestStore(t)
	apply(t, st, rules(10), 0)
	l := &loads{ch: make(chan int, 100)}
	refused := 0
	l.refuse = func(f *routes.File) error {
		if f.Routes[0].Split[0].Weight == 66 {
			refused++
			return errors.New("not with this configuration")
		}
		return nil
	}
	log := &syncBuffer{}
	f, err := revisions.NewFollower(revisions.FollowerOptions{Store: st, Load: l.load, Logger: slogTo(log)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	apply(t, st, rules(66), 1)
	if err := f.Sync(ctx); err == nil || !strings.Contains(err.Error(), "revision 2 rejected") {
		t.Fatalf("sync: %v", err)
	}
	if err := f.Sync(ctx); err != nil || refused != 1 || f.Revision() != 1 {
		t.Fatalf("tried again: %v, refused %d times, serving %d", err, refused, f.Revision())
	}
	if !strings.Contains(log.String(), "the previous rules keep serving") {
		t.Fatalf("log: %s", log.String())
	}
	// Text that does not parse, written behind the store's back.
	if _, err := pool.Exec(ctx, `INSERT INTO route_revisions (number, parent, body, author, reason, action) VALUES (3, 2, 'version: 2', 'x', 'y', 'apply');
		UPDATE route_live SET revision = 3`); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(ctx); err == nil || !strings.Contains(err.Error(), "revision 3:1:10: version: must be 1") {
		t.Fatalf("sync of an invalid revision: %v", err)
	}
	if f.Revision() != 1 || len(l.ch) != 1 {
		t.Fatalf("serving %d after refusals", f.Revision())
	}
}

func TestNewFollowerNeedsAStoreAndALoad(t *testing.T) {
	t.Parallel()
	if _, err := revisions.NewFollower(revisions.FollowerOptions{}); err == nil {
		t.Fatal("accepted")
	}
}
