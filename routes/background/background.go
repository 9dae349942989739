// Package background runs the parse of a large rule set off the request
// path: on an operating-system thread of its own at the lowest CPU
// priority. A file reload (strangler.Gateway.LoadFile) and a route-store
// revision (revisions.Follower.Sync) both parse through Run.
package background

import "runtime"

// Run runs work on an operating-system thread of its own at the lowest
// CPU priority the system gives (nice 19 on Linux), and waits for it.
// Parsing and validating a large rule set takes a few hundred
// milliseconds of CPU; at low priority that work yields the processor to
// serving requests, on this instance and on whatever shares the machine
// with it, instead of competing with them. The goroutine never unlocks
// its thread, so the thread, and its lowered priority, end with the work.
// While it runs the process has one more P, so that the thread does
// not take one from requests when the system leaves it waiting, and the
// garbage collector is held off, up to CollectorBudget more memory, and
// collects once the work is done (see hold).
func Run[T any](work func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	release := hold()
	defer release()
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		lowerThreadPriority()
		v, err := work()
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}
