package revisions

import "runtime"

// inBackground runs work on an operating-system thread of its own at the
// lowest CPU priority the system gives (nice 19 on Linux), and waits for
// it. Parsing and validating a large revision takes a few hundred
// milliseconds of CPU on every instance at once; at low priority that
// work yields the processor to serving requests, on this instance and on
// whatever shares the machine with it, instead of competing with them.
// The goroutine never unlocks its thread, so the thread, and its lowered
// priority, end with the work.
func inBackground[T any](work func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
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
