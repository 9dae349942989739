package shadow

import (
	"crypto/sha256"
	"hash"
	"net/http"
	"sync"
)

// Capture keeps a copy of a body as it is written: in full up to a size
// and while the Mirror's memory budget has room, by its SHA-256 beyond.
// It is safe for concurrent use; Release gives its memory back, after
// which writes are ignored.
type Capture struct {
	m   *Mirror
	max int64

	mu       sync.Mutex
	buf      []byte
	held     int64 // bytes of the budget held: cap(buf)
	h        hash.Hash
	size     int64
	released bool
}

// NewCapture returns a Capture that keeps bodies up to max bytes in full.
func (m *Mirror) NewCapture(max int64) *Capture { return &Capture{m: m, max: max} }

// Write copies p; it never fails.
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return len(p), nil
	}
	c.size += int64(len(p))
	if c.h != nil {
		c.h.Write(p)
		return len(p), nil
	}
	need := len(c.buf) + len(p)
	if int64(need) <= c.max && (need <= cap(c.buf) || c.grow(need)) {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	// Too large, or no room: hash from here on.
	c.h = sha256.New()
	c.h.Write(c.buf)
	c.h.Write(p)
	c.buf = nil
	c.m.release(c.held)
	c.held = 0
	return len(p), nil
}

// grow makes room for need bytes within the budget.
func (c *Capture) grow(need int) bool {
	n := max(2*cap(c.buf), need, 4096)
	if int64(n) > c.max {
		n = int(c.max)
	}
	if !c.m.reserve(int64(n - cap(c.buf))) {
		return false
	}
	c.held += int64(n - cap(c.buf))
	b := make([]byte, len(c.buf), n)
	copy(b, c.buf)
	c.buf = b
	return true
}

// Response is the captured answer with the given status and headers. The
// body stays owned by the Capture: use the Response before Release.
func (c *Capture) Response(status int, header http.Header) *Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Response{Status: status, Header: header, Size: c.size}
	if c.h != nil {
		r.Hashed = true
		copy(r.Sum[:], c.h.Sum(nil))
	} else {
		r.Body = c.buf
		if r.Body == nil {
			r.Body = []byte{}
		}
	}
	return r
}

// Release gives the Capture's memory back to the budget.
func (c *Capture) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.released {
		c.released = true
		c.m.release(c.held)
		c.held, c.buf = 0, nil
	}
}
