package background

import (
	"errors"
	"syscall"
	"testing"
)

// A rule set is parsed on a thread of its own at nice 19, which ends with
// the work; the caller's thread keeps its priority.
func TestInBackgroundRunsAtTheLowestPriority(t *testing.T) {
	// The raw getpriority system call answers 20 - nice.
	nice := func() int {
		p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
		if err != nil {
			t.Fatal(err)
		}
		return 20 - p
	}
	before := nice()
	got, err := Run(func() (int, error) { return nice(), nil })
	if err != nil || got != 19 {
		t.Fatalf("the work ran at nice %d (%v), want 19", got, err)
	}
	if after := nice(); after != before {
		t.Errorf("the caller's thread went from nice %d to %d", before, after)
	}
	wantErr := errors.New("bad revision")
	if _, err := Run(func() (int, error) { return 0, wantErr }); err != wantErr {
		t.Errorf("error %v, want %v", err, wantErr)
	}
}
