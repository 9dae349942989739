package adapters_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/adapters"
	"github.com/ficus-gw/ficus/adapters/inbox"
)

// BenchmarkDelivery drains an inbox of b.N events (1 KiB each) to a local
// target with 8 workers: delivered events per second, to compare with the
// ingest rate in the same run.
func BenchmarkDelivery(b *testing.B) {
	for _, batch := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchDelivery(b, batch) })
	}
}

func benchDelivery(b *testing.B, batch int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, st := newInbox(b)
	var n atomic.Int64
	drained := make(chan struct{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == int64(b.N) {
			close(drained)
		}
	}))
	defer target.Close()
	body := []byte(fmt.Sprintf(`{"pad":%q}`, make([]byte, 1000)))
	for i := 0; i < b.N; i++ {
		if _, err := st.Insert(ctx, &inbox.Event{Adapter: "a", EventID: fmt.Sprint(i), Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	d := &adapters.Deliverer{Inbox: st, Workers: 8, Batch: batch, Poll: 5 * time.Millisecond,
		Targets: map[string]adapters.Target{"a": {URL: target.URL, Token: staticToken}}}
	b.ResetTimer()
	start := time.Now()
	go d.Run(ctx)
	<-drained
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
