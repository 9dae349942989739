package background

import "syscall"

// lowerThreadPriority sets the calling thread's nice value to 19 (Linux
// schedules threads one by one: this leaves the process's other threads
// as they are). A failure leaves the priority as it was.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
