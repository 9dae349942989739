package idp

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// AuditStorage keeps the audit trail.
type AuditStorage interface {
	// Audit appends events to the trail.
	Audit(ctx context.Context, events ...store.AuditEvent) error
}

// auditor logs every audit event at once and writes them to the store in
// batches (every 100 ms or 500 events), so a token request does not pay a
// second round trip. Close flushes. A full queue blocks the caller rather
// than drop an event.
type auditor struct {
	st   AuditStorage
	log  *slog.Logger
	ch   chan store.AuditEvent
	done chan struct{}
	once sync.Once
}

func newAuditor(st AuditStorage, log *slog.Logger) *auditor {
	a := &auditor{st: st, log: log, ch: make(chan store.AuditEvent, 4096), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *auditor) add(ctx context.Context, e store.AuditEvent) {
	level := slog.LevelInfo
	if e.Outcome != "ok" {
		level = slog.LevelWarn
	}
	a.log.LogAttrs(ctx, level, "audit", slog.String("event", e.Event), slog.String("client_id", e.ClientID),
		slog.String("user_id", e.UserID), slog.String("grant", e.Grant), slog.String("outcome", e.Outcome),
		slog.String("reason", e.Reason), slog.String("remote_ip", e.RemoteIP))
	defer func() { _ = recover() }() // closed during shutdown: the log line is the record
	a.ch <- e
}

func (a *auditor) run() {
	defer close(a.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var batch []store.AuditEvent
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.st.Audit(ctx, batch...); err != nil {
			a.log.Error("audit trail write failed", "events", len(batch), "error", err.Error())
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case e, ok := <-a.ch:
			if !ok {
				flush()
				return
			}
			batch = append(batch, e)
			if len(batch) >= 500 {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}

func (a *auditor) close() {
	a.once.Do(func() { close(a.ch) })
	<-a.done
}

func (p *Provider) auditOK(ctx context.Context, event, clientID, userID, grant, ip string) {
	p.audit.add(ctx, store.AuditEvent{At: p.now(), Event: event, ClientID: clientID, UserID: userID, Grant: grant, Outcome: "ok", RemoteIP: ip})
}

func (p *Provider) auditFail(ctx context.Context, clientID, userID, ip, reason string) {
	p.audit.add(ctx, store.AuditEvent{At: p.now(), Event: "auth_failed", ClientID: clientID, UserID: userID, Outcome: "denied", Reason: reason, RemoteIP: ip})
}
