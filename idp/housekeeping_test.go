package idp_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store"
	"github.com/ficus-gw/ficus/idp/store/memory"
)

// reportingStore is a store that, once reporting, reports the start of
// each key listing and each cleanup (so when the next one starts, the
// previous one is done), and can fail key listings.
type reportingStore struct {
	idp.Storage
	reporting       atomic.Bool
	listed, cleaned chan struct{}
	failList        atomic.Bool
}

func (s *reportingStore) ListKeys(ctx context.Context) ([]*store.SigningKey, error) {
	if s.reporting.Load() {
		s.listed <- struct{}{}
	}
	if s.failList.Load() {
		return nil, errors.New("keys table unreachable")
	}
	return s.Storage.ListKeys(ctx)
}

func (s *reportingStore) DeleteExpired(ctx context.Context, before time.Time, batch int) (int, error) {
	if s.reporting.Load() {
		s.cleaned <- struct{}{}
	}
	return s.Storage.DeleteExpired(ctx, before, batch)
}

func wait(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
}

// Issue 9: the key-reload ticker, moved out of cmd/ficus: a key rotated by
// another instance (or the CLI) on the same store is published here after
// a reload; a failed reload is logged and keeps the keys; cleanup runs;
// Run ends with its context.
func TestHousekeepingReloadsKeysAndCleansUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	shared := memory.New()
	other, err := idp.NewKeyManager(ctx, shared, idp.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := &reportingStore{Storage: shared, listed: make(chan struct{}), cleaned: make(chan struct{})}
	keys, err := idp.NewKeyManager(ctx, st, idp.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	p, err := idp.New(idp.Options{Config: idp.Config{Issuer: "http://ficus.test", Hashing: idp.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}},
		Store: st, Keys: keys, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)

	rotated, err := other.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.reporting.Store(true)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		idp.Housekeeping{Provider: p, KeyReloadInterval: time.Millisecond, CleanupInterval: time.Millisecond}.Run(runCtx)
	}()
	wait(t, st.cleaned, "cleanup")
	wait(t, st.listed, "key reload")
	wait(t, st.listed, "second key reload") // the first one is done by now
	if !strings.Contains(string(p.Keys().JWKS()), rotated.ID) {
		t.Fatalf("the key rotated elsewhere (%s) is not published: %s", rotated.ID, p.Keys().JWKS())
	}
	st.failList.Store(true)
	wait(t, st.listed, "failing key reload")
	wait(t, st.listed, "key reload after a failure") // the failure is logged by now
	if !strings.Contains(logs.String(), "reloading signing keys") || !strings.Contains(logs.String(), "keys table unreachable") {
		t.Fatalf("failed reload not logged: %s", logs.String())
	}
	if !strings.Contains(string(p.Keys().JWKS()), rotated.ID) {
		t.Fatal("a failed reload dropped the keys")
	}
	cancel()
	for {
		select {
		case <-st.listed:
		case <-st.cleaned:
		case <-done:
			return
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not end with its context")
		}
	}
}
