package memory_test

import (
	"testing"

	"github.com/ficus-gw/ficus/idp/store/memory"
	"github.com/ficus-gw/ficus/idp/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memory.New() })
}

// Both stores implement every storage interface of the IDP.
var _ storetest.Store = (*memory.Store)(nil)

func TestJPTKeysApart(t *testing.T) {
	s := memory.New()
	storetest.KeysApart(t, s, s.JPTKeys())
}
