package revisions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/background"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPollInterval is how often a Follower reads the live revision
// number, as a safety net beside the notices, and sends its heartbeat.
const DefaultPollInterval = 5 * time.Second

// queryTimeout bounds each database call of a Follower.
const queryTimeout = 10 * time.Second

// FollowerOptions configure a Follower.
type FollowerOptions struct {
	// Store is the rule store. Required.
	Store *Store
	// Load makes a rule set live atomically (strangler.Gateway.Load); an
	// error keeps the previous rules. Required.
	Load func(*routes.File) error
	// Logger receives loads, refusals and lost connections. Nil discards.
	Logger *slog.Logger
	// Registerer receives the ficus_routes_revision gauge. Nil keeps it
	// unregistered.
	Registerer prometheus.Registerer
	// PollInterval is how often the live revision number is read and the
	// heartbeat sent. Zero means DefaultPollInterval.
	PollInterval time.Duration
}

// Follower keeps one instance on the live revision: see Sync and Run. It
// is safe for concurrent use.
type Follower struct {
	store *Store
	load  func(*routes.File) error
	log   *slog.Logger
	poll  time.Duration
	gauge prometheus.Gauge
	self  Instance

	mu     sync.Mutex // serialises Sync
	failed int64      // the last revision refused, not tried again
	served atomic.Int64
}

// NewFollower returns a Follower for this process (its heartbeat names
// the host, the pid and a random instance id).
func NewFollower(o FollowerOptions) (*Follower, error) {
	if o.Store == nil || o.Load == nil {
		return nil, errors.New("revisions: a follower needs a store and a load function")
	}
	f := &Follower{store: o.Store, load: o.Load, log: o.Logger, poll: o.PollInterval,
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ficus_routes_revision", Help: "The route revision this instance serves (0: none yet).",
		})}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.poll <= 0 {
		f.poll = DefaultPollInterval
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(f.gauge); err != nil {
			return nil, err
		}
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	f.self = Instance{ID: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:])),
		Hostname: host, PID: os.Getpid(), StartedAt: time.Now()}
	return f, nil
}

// InstanceID is the id this instance's heartbeat carries
// (host-pid-random).
func (f *Follower) InstanceID() string { return f.self.ID }

// Revision returns the revision this instance serves; 0 before the first.
func (f *Follower) Revision() int64 { return f.served.Load() }

// Sync loads the live revision if this instance does not serve it yet. A
// revision that does not parse, or that Load refuses, is logged with
// every error and remembered, not tried again; the previous rules keep
// serving. No revision at all is not an error: the instance stays
// without rules (not ready) until one is applied.
func (f *Follower) Sync(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	n, err := f.store.LiveNumber(ctx)
	if err != nil {
		return fmt.Errorf("route store: read the live revision: %w", err)
	}
	if n == 0 || n == f.served.Load() || n == f.failed {
		return nil
	}
	start := time.Now()
	rev, err := f.store.Get(ctx, n)
	if err != nil {
		return fmt.Errorf("route store: %w", err)
	}
	// The first revision has no requests to yield to: it is parsed at
	// normal priority, so that a busy machine does not hold readiness back.
	var file *routes.File
	if f.served.Load() == 0 {
		file, err = rev.Parse()
	} else {
		file, err = background.Run(rev.Parse)
	}
	if err == nil {
		err = f.load(file)
	}
	if err != nil {
		f.failed = n
		f.log.Error("route revision rejected; the previous rules keep serving", "revision", n, "serving", f.served.Load(), "errors", err.Error())
		return fmt.Errorf("%s rejected:\n%w", rev.Name(), err)
	}
	f.served.Store(n)
	f.gauge.Set(float64(n))
	f.log.Info("route revision loaded", "revision", n, "routes", len(file.Routes), "took", time.Since(start).String())
	f.heartbeat(ctx)
	return nil
}

func (f *Follower) heartbeat(ctx context.Context) {
	in := f.self
	in.Revision = f.served.Load()
	if err := f.store.Heartbeat(ctx, in); err != nil && ctx.Err() == nil {
		f.log.Warn("route store: heartbeat not recorded", "error", err.Error())
	}
}

// Run follows the live revision until ctx ends: it LISTENs on Channel and
// syncs on each notice, syncs again whenever the listening connection was
// lost and is back (notices sent meanwhile are lost), and every poll
// interval reads the live revision number and sends its heartbeat. When
// ctx ends it removes its heartbeat row.
func (f *Follower) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { f.guard(ctx, f.listen) })
	wg.Go(func() { f.guard(ctx, f.pollLoop) })
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = f.store.Forget(cctx, f.self.ID)
}

// guard runs loop until ctx ends, restarting it after a panic.
func (f *Follower) guard(ctx context.Context, loop func(context.Context)) {
	for ctx.Err() == nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					f.log.Error("route follower panicked; restarting it", "panic", fmt.Sprint(p))
				}
			}()
			loop(ctx)
		}()
	}
}

func (f *Follower) pollLoop(ctx context.Context) {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := f.Sync(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("route store poll failed", "error", err.Error())
		}
		hctx, cancel := context.WithTimeout(ctx, queryTimeout)
		f.heartbeat(hctx)
		cancel()
	}
}

func (f *Follower) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.listenOnce(ctx, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("route revision listener lost its connection; it resyncs once reconnected", "error", err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *Follower) listenOnce(ctx context.Context, connected func()) error {
	actx, cancel := context.WithTimeout(ctx, queryTimeout)
	c, err := f.store.db.Acquire(actx)
	cancel()
	if err != nil {
		return err
	}
	// The connection carries LISTEN state: it never goes back to the pool.
	conn := c.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	// Listening now: whatever was applied before (while disconnected, or
	// before start) is caught by this sync, what comes after by a notice.
	if err := f.Sync(ctx); err != nil && ctx.Err() == nil {
		f.log.Warn("route store resync failed", "error", err.Error())
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if rev, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil && rev == f.served.Load() {
			continue
		}
		if err := f.Sync(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("route store sync failed", "error", err.Error())
		}
	}
}
