//go:build unix

package strangler

import (
	"errors"
	"syscall"
)

// fastPathSupported: peekIdle can look at a socket without waiting.
const fastPathSupported = true

// peekIdle reports whether an idle socket has nothing to read and is not
// at its end: one recv with MSG_PEEK on the non-blocking socket, which
// consumes nothing and never waits.
func peekIdle(rc syscall.RawConn) bool {
	quiet := false
	err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		quiet = n <= 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true // one look, never a wait
	})
	return err == nil && quiet
}
