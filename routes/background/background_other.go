//go:build !linux

package background

// lowerThreadPriority does nothing where threads have no priority of
// their own that a process may lower.
func lowerThreadPriority() {}
