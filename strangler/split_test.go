package strangler

import (
	"hash/fnv"
	"testing"
)

// TestBucketOfIsStable pins the cohort hash: every instance and every
// version must put a visitor in the same bucket, or a deploy would move
// visitors between the monolith and a new service. The buckets are those
// of 64-bit FNV-1a over salt, a zero byte and the id.
func TestBucketOfIsStable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		salt, id string
		want     int
	}{
		{"", "", 7455},
		{"salt", "id", 4734},
		{"checkout", "6f1e3c2a9b", 3281},
		{"a", "bc", 4899}, // the separator keeps "a"+"bc" and "ab"+"c" apart
		{"ab", "c", 4135},
	}
	for _, tt := range tests {
		if got := bucketOf(tt.salt, tt.id); got != tt.want {
			t.Errorf("bucketOf(%q, %q) = %d, want %d", tt.salt, tt.id, got, tt.want)
		}
		h := fnv.New64a()
		h.Write([]byte(tt.salt + "\x00" + tt.id))
		if got, want := bucketOf(tt.salt, tt.id), int(h.Sum64()%buckets); got != want {
			t.Errorf("bucketOf(%q, %q) = %d, FNV-1a gives %d", tt.salt, tt.id, got, want)
		}
	}
}
