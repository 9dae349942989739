//go:build !unix

package strangler

import "syscall"

// fastPathSupported: without a way to peek at an idle socket, every
// request takes http.Transport.
const fastPathSupported = false

func peekIdle(syscall.RawConn) bool { return false }
