package strangler

import (
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// errBodyStalled ends a response whose upstream stopped sending its body.
var errBodyStalled = errors.New("ficus: upstream response body stalled")

// streamBody carries an upstream's response body to the client.
//
// The first read goes straight into the copy loop's buffer: a body that
// ends with it (most answers) costs nothing more. If the body goes on, a
// goroutine reads one buffer ahead from then on, so the copy loop knows when
// its next read would block; only then does it flush what the client has
// been written. Bytes that the upstream sends slowly (progress output,
// drips, long polls, with or without a Content-Length) reach the client as
// they come, and a body that flows is not flushed after every write. The
// headers of a body without a length go out at once, as before the first
// byte of the body.
//
// When the upstream sends nothing for idle, Read fails: the reverse proxy
// then aborts the client's response, which the client sees incomplete (no
// last chunk, fewer bytes than announced) instead of waiting forever.
//
// While it streams, it alone flushes the client's response (the reverse
// proxy's flushes after every write do nothing). Read and Close are for one
// goroutine, the copy loop; Close must be called, and it stops the
// read-ahead.
type streamBody struct {
	rc      io.ReadCloser
	w       *responseWriter
	idle    time.Duration
	onStall func()
	pool    *bufferPool

	started bool        // the first read was made
	stalled atomic.Bool // the idle timer ended the first read

	// The read-ahead, once started.
	ahead bool
	next  chan chunk    // its result; capacity 1
	reuse chan struct{} // the copy loop is done with the buffer; capacity 1
	stop  chan struct{} // closed by Close

	cur    chunk // being copied out
	off    int   // how much of cur.b was copied
	timer  *time.Timer
	closed bool
}

type chunk struct {
	b   []byte
	err error
}

func newStreamBody(rc io.ReadCloser, w *responseWriter, pool *bufferPool, idle time.Duration, onStall func()) *streamBody {
	w.streaming.Store(true)
	return &streamBody{rc: rc, w: w, idle: idle, onStall: onStall, pool: pool}
}

// Read copies out the chunk at hand, or waits for the next one, flushing
// the client's response first if it is not there yet.
func (s *streamBody) Read(p []byte) (int, error) {
	if !s.started {
		s.started = true
		return s.readFirst(p)
	}
	if s.off == len(s.cur.b) {
		if s.cur.err != nil {
			return 0, s.cur.err
		}
		if err := s.fetch(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.cur.b[s.off:])
	s.off += n
	if s.off < len(s.cur.b) {
		return n, nil
	}
	if s.cur.err == nil {
		s.reuse <- struct{}{} // the buffer is the read-ahead's again
	}
	return n, s.cur.err
}

// readFirst reads the start of the body straight into p, under the idle
// timer, and starts the read-ahead if the body goes on.
func (s *streamBody) readFirst(p []byte) (int, error) {
	t := time.AfterFunc(s.idle, s.stall)
	n, err := s.rc.Read(p)
	if !t.Stop() && s.stalled.Load() {
		s.cur = chunk{err: errBodyStalled}
		return n, errBodyStalled
	}
	if err != nil {
		s.cur = chunk{err: err}
		return n, err
	}
	s.ahead = true
	s.next, s.reuse, s.stop = make(chan chunk, 1), make(chan struct{}, 1), make(chan struct{})
	go s.readAhead()
	return n, nil
}

// stall ends a first read that waited idle for the upstream.
func (s *streamBody) stall() {
	s.stalled.Store(true)
	if s.onStall != nil {
		s.onStall()
	}
	_ = s.rc.Close() // ends the read in progress
}

// readAhead reads the body into its one buffer, hands each chunk to the
// copy loop and waits for it to be copied out before reading again. The
// buffer goes back to the pool only once Close says the copy loop is done
// with it and the read in progress has returned.
func (s *streamBody) readAhead() {
	buf := s.pool.Get()
	defer s.pool.Put(buf)
	for {
		n, err := s.rc.Read(buf)
		s.next <- chunk{b: buf[:n], err: err} // never blocks: one chunk at most is out
		if err != nil {
			<-s.stop
			return
		}
		select {
		case <-s.reuse:
		case <-s.stop:
			return
		}
	}
}

func (s *streamBody) fetch() error {
	select {
	case s.cur = <-s.next:
		s.off = 0
		return nil
	default:
	}
	// The next read would block: send the client what it has so far.
	_ = s.w.flush()
	if s.timer == nil {
		s.timer = time.NewTimer(s.idle)
	} else {
		s.timer.Reset(s.idle)
	}
	select {
	case s.cur = <-s.next:
		s.off = 0
		return nil
	case <-s.timer.C:
		s.cur, s.off = chunk{err: errBodyStalled}, 0
		if s.onStall != nil {
			s.onStall()
		}
		return errBodyStalled
	}
}

// Close stops the read-ahead and closes the upstream body, which ends a
// read in progress.
func (s *streamBody) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.w.streaming.Store(false)
	if s.ahead {
		close(s.stop)
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	return s.rc.Close()
}
