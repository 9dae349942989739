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
// While it runs the garbage collector is held off (holdCollector, up to
// CollectorBudget more memory) and it collects once the work is done.
func Run[T any](work func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	release := holdCollector()
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
