package tokenhash_test

import (
	"testing"

	"github.com/ficus-gw/ficus/idp/tokenhash"
)

// The stored hashes of every deployed token depend on these bytes: a change
// here would make every issued token unknown.
func TestSumIsPinned(t *testing.T) {
	tests := []struct{ name, given, want string }{
		{"empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"access token", "ficus_at_AAAA", "507650c402e949c9eda3aada0ef50e69c32cca784b0ec65a3fe9590fbaa1efa5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokenhash.Sum(tt.given); got != tt.want {
				t.Fatalf("Sum(%q) = %s, want %s", tt.given, got, tt.want)
			}
		})
	}
}
