package strangler

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fastTransport sends the requests that need nothing of http.Transport's
// machinery — bodiless GET, HEAD and OPTIONS to a plain-HTTP upstream, no
// upgrade, no Expect — on the caller's goroutine, over a bounded pool of
// HTTP/1.1 connections; every other request goes to slow. The wire format
// is the standard library's own: (*http.Request).Write out,
// http.ReadResponse in, so framing (Content-Length, chunked, HEAD, 204,
// 304, conflicting lengths refused) is decided exactly as http.Transport
// decides it. What it saves is http.Transport's two goroutines per
// connection and the hand-offs between them and the caller.
//
// A connection goes back to the pool only when its response body was read
// to the end, neither side asked to close, the caller's context did not
// end, and no byte beyond the response was received; anything else closes
// it. A connection taken from the pool is first checked for bytes or an
// end of stream that arrived while it was idle (then it is closed and
// another one is used).
type fastTransport struct {
	slow *http.Transport
	// host is the upstream URL's host, addr the host:port dialled.
	host, addr string
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	// idle holds at most max_idle_conns connections.
	idle chan *fastConn
	// idleTimeout closes connections idle longer; headerTimeout bounds
	// the wait for a response's header (both as http.Transport's).
	idleTimeout, headerTimeout time.Duration
	// maxHeader bounds the bytes read for a response's header (1xx
	// answers included, until one is passed on), as slow's
	// MaxResponseHeaderBytes does: 10 MiB unless it is set.
	maxHeader int64
}

// fastConn is one pooled connection.
type fastConn struct {
	c         net.Conn
	lr        *limitedConn // what br reads from: c, bounded while a header is read
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	// state is connInUse, connIdle (in the pool) or connExpired (closed
	// by idleTimer while in the pool); idleTimer closes an idle
	// connection once idleTimeout passes, as http.Transport's does.
	state     atomic.Int32
	idleTimer *time.Timer
}

const (
	connInUse int32 = iota
	connIdle
	connExpired
)

// expire closes the connection if it is still idle in the pool.
func (pc *fastConn) expire() {
	if pc.state.CompareAndSwap(connIdle, connExpired) {
		_ = pc.c.Close()
	}
}

func newFastTransport(slow *http.Transport, host string, dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, idleTimeout, headerTimeout time.Duration) *fastTransport {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(strings.Trim(host, "[]"), "80")
	}
	maxHeader := slow.MaxResponseHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 10 << 20 // http.Transport's default
	}
	return &fastTransport{slow: slow, host: host, addr: addr, dial: dial, idle: make(chan *fastConn, maxIdle),
		idleTimeout: idleTimeout, headerTimeout: headerTimeout, maxHeader: maxHeader}
}

// limitedConn reads from a connection at most n bytes, then fails: the
// bound on a response's header (http.Transport's persistConn.readLimit).
type limitedConn struct {
	c net.Conn
	n int64
}

// errHeaderTooBig marks a header cut off at the limit.
var errHeaderTooBig = errors.New("read limit exhausted")

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooBig
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= int64(n)
	return n, err
}

// fastEligible reports whether req may take the fast path.
func (t *fastTransport) fastEligible(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	h := req.Header
	return req.URL.Scheme == "http" && req.URL.Host == t.host &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		len(req.TransferEncoding) == 0 && len(req.Trailer) == 0 && !req.Close &&
		len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0 && len(h["Connection"]) == 0
}

// RoundTrip implements http.RoundTripper.
func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.fastEligible(req) {
		return t.slow.RoundTrip(req)
	}
	ctx := req.Context()
	for {
		pc, reused, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := t.send(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		_ = pc.c.Close()
		var nr *nothingReadError
		var ne net.Error
		if reused && errors.As(err, &nr) && ctx.Err() == nil && !(errors.As(err, &ne) && ne.Timeout()) {
			// The upstream closed a pooled connection as the request
			// went out; the request is idempotent and no byte of an
			// answer came: a new connection takes it (as http.Transport
			// does). A fresh connection is never retried, nor a
			// timeout: that is the upstream's silence, not a closed
			// connection, and each retry would wait as long again.
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

// nothingReadError is a failure before any byte of the response arrived.
type nothingReadError struct{ err error }

func (e *nothingReadError) Error() string { return e.err.Error() }
func (e *nothingReadError) Unwrap() error { return e.err }

// get takes a pooled connection that is still sound, or dials one.
func (t *fastTransport) get(ctx context.Context) (*fastConn, bool, error) {
	for {
		var pc *fastConn
		select {
		case pc = <-t.idle:
		default:
		}
		if pc == nil {
			break
		}
		if !pc.state.CompareAndSwap(connIdle, connInUse) {
			continue // its idle timer closed it
		}
		if t.idleTimeout > 0 && time.Since(pc.idleSince) > t.idleTimeout || !pc.quiet() {
			_ = pc.c.Close()
			continue
		}
		return pc, true, nil
	}
	c, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	lr := &limitedConn{c: c, n: math.MaxInt64}
	return &fastConn{c: c, lr: lr, br: bufio.NewReaderSize(lr, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

// quiet reports whether nothing arrived on an idle connection: no bytes
// (an unsolicited response) and no end of stream (the upstream closed it).
// It peeks at the socket without waiting (peekIdle).
func (pc *fastConn) quiet() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	sc, ok := pc.c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	return peekIdle(rc)
}

var aLongTimeAgo = time.Unix(1, 0)

// send writes req on pc and reads the response's header. The caller's
// context ending, or headerTimeout passing before the header is read,
// ends the exchange; after the header, the context still ends the body.
func (t *fastTransport) send(ctx context.Context, pc *fastConn, req *http.Request) (*http.Response, error) {
	var deadline time.Time // the context's own deadline ends it through stop
	if t.headerTimeout > 0 {
		deadline = time.Now().Add(t.headerTimeout)
	}
	if err := pc.c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	var ended atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		ended.Store(true)
		_ = pc.c.SetDeadline(aLongTimeAgo)
	})
	fail := func(err error) (*http.Response, error) {
		stop()
		if pc.lr.n <= 0 {
			err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", t.maxHeader)
		}
		return nil, err
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(&nothingReadError{err})
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(&nothingReadError{err})
	}
	pc.lr.n = t.maxHeader
	if _, err := pc.br.Peek(1); err != nil {
		return fail(&nothingReadError{err})
	}
	var resp *http.Response
	for {
		var err error
		if resp, err = http.ReadResponse(pc.br, req); err != nil {
			return fail(err)
		}
		code := resp.StatusCode
		if code >= 200 {
			break
		}
		if code == http.StatusSwitchingProtocols {
			// Nothing asked for an upgrade on this path.
			return fail(errors.New("ficus: upstream switched protocols unasked"))
		}
		// An informational answer (103 Early Hints): passed on as
		// http.Transport passes it, through the request's client trace.
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return fail(err)
			}
			// Passed on: the next header has a limit of its own (as
			// http.Transport has it).
			pc.lr.n = t.maxHeader
		}
	}
	// The header is in: from here only the context ends the body (the
	// reverse proxy's idle timer bounds a stalled one), and no limit.
	pc.lr.n = math.MaxInt64
	if err := pc.c.SetDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	if ended.Load() {
		return fail(ctx.Err())
	}
	b := &fastBody{rc: resp.Body, pc: pc, t: t, stop: stop, keep: !resp.Close}
	if resp.Body == http.NoBody {
		b.eof.Store(true)
	}
	resp.Body = b
	return resp, nil
}

// fastBody is a response body on the fast path. Read and Close may run at
// the same time (Close ends a read in progress).
type fastBody struct {
	rc   io.ReadCloser
	pc   *fastConn
	t    *fastTransport
	stop func() bool
	keep bool
	eof  atomic.Bool
	once sync.Once
}

func (b *fastBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// Close returns the connection to the pool when the body was read to its
// end and nothing else stands in the way; otherwise it closes it, which
// ends a read in progress.
func (b *fastBody) Close() error {
	b.once.Do(func() {
		stopped := b.stop() // false: the context ended, the deadline is spoiled
		if stopped && b.keep && b.eof.Load() && b.pc.br.Buffered() == 0 {
			_ = b.rc.Close() // at its end: releases nothing but its state
			pc, t := b.pc, b.t
			pc.idleSince = time.Now()
			pc.state.Store(connIdle)
			if t.idleTimeout > 0 {
				// Set before the pool has it (another caller may take
				// it at once). A timer that fires for an earlier idle
				// spell finds the connection in use, or closes one
				// about as old (get skips it).
				if pc.idleTimer == nil {
					pc.idleTimer = time.AfterFunc(t.idleTimeout, pc.expire)
				} else {
					pc.idleTimer.Reset(t.idleTimeout)
				}
			}
			select {
			case t.idle <- pc:
				return
			default: // the pool is full
			}
			pc.state.Store(connExpired)
			if pc.idleTimer != nil {
				pc.idleTimer.Stop()
			}
		}
		_ = b.pc.c.Close()
	})
	return nil
}

// CloseIdleConnections closes the pooled connections (a reload that
// retires the upstream) and those of the slow path.
func (t *fastTransport) CloseIdleConnections() {
	for {
		select {
		case pc := <-t.idle:
			_ = pc.c.Close()
		default:
			t.slow.CloseIdleConnections()
			return
		}
	}
}
