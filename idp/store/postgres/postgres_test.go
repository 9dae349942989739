package postgres_test

import (
	"context"
	"testing"

	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/idp/store/storetest"
	"github.com/ficus-gw/ficus/strangler/pgtest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		pool := pgtest.NewPool(t)
		if err := postgres.Migrate(context.Background(), pool); err != nil {
			t.Fatal(err)
		}
		return postgres.New(pool)
	})
}

func TestJPTKeysApart(t *testing.T) {
	pool := pgtest.NewPool(t)
	if err := postgres.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	s := postgres.New(pool)
	storetest.KeysApart(t, s, s.JPTKeys())
}

func TestMigrateTwiceConcurrently(t *testing.T) {
	pool := pgtest.NewPool(t)
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { errs <- postgres.Migrate(context.Background(), pool) }()
	}
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Both stores implement every storage interface of the IDP.
var _ storetest.Store = (*postgres.Store)(nil)
