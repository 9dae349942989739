package main

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ficus-gw/ficus/strangler/groupcommit"
	"github.com/prometheus/client_golang/prometheus"
)

// The group commit's metrics move with a real batcher: items per commit,
// commit time, each item's wait, and the failed commits, by kind.
func TestGroupCommitMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := &groupcommit.Batcher[int, int]{Name: "tokens",
		Commit: func(_ context.Context, items []int) ([]int, error) {
			if slices.Contains(items, 0) {
				return nil, errors.New("refused")
			}
			return items, nil
		}}
	groupcommit.Options{Observe: newGroupCommitMetrics(reg)}.Apply(b)
	t.Cleanup(b.Close)
	for _, it := range []int{1, 2, 0} {
		if _, err := b.Submit(context.Background(), it); (err != nil) != (it == 0) {
			t.Fatalf("item %d: %v", it, err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "kind" || l[0].GetValue() != "tokens" {
				t.Fatalf("%s labelled %v", f.GetName(), l)
			}
			if h := m.GetHistogram(); h != nil {
				got[f.GetName()+"_count"], got[f.GetName()+"_sum"] = float64(h.GetSampleCount()), h.GetSampleSum()
			} else {
				got[f.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"ficus_store_group_commit_items_count": 3, "ficus_store_group_commit_items_sum": 3,
		"ficus_store_group_commit_seconds_count": 3, "ficus_store_group_commit_wait_seconds_count": 3,
		"ficus_store_group_commit_failed_total": 1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
}
