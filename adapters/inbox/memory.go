package inbox

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// ErrNotFound is returned for an unknown event.
var ErrNotFound = errors.New("event not found")

// Memory is an in-memory inbox for `ficus demo` and trials: it keeps
// nothing across restarts, so it cannot keep the promise that an accepted
// event is never lost. Use the PostgreSQL Store for anything real.
type Memory struct {
	mu     sync.Mutex
	nextID int64
	events []*memEvent
}

type memEvent struct {
	Event
	next   time.Time
	reason string
}

// NewMemory returns an empty in-memory inbox.
func NewMemory() *Memory { return &Memory{} }

// Insert stores an event, due at once, unless its id is a repeat.
func (m *Memory) Insert(_ context.Context, e *Event) (bool, error) {
	return m.insert(e, 0), nil
}

// InsertClaimed stores an event already claimed for lease (see
// Store.InsertClaimed).
func (m *Memory) InsertClaimed(_ context.Context, e *Event, lease time.Duration) (bool, error) {
	return m.insert(e, max(lease, time.Millisecond)), nil
}

func (m *Memory) insert(e *Event, lease time.Duration) bool {
	start := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.events {
		if x.Adapter == e.Adapter && x.EventID == e.EventID {
			return false
		}
	}
	m.nextID++
	e.ID, e.ReceivedAt, e.Status, e.Attempts, e.Claim = m.nextID, time.Now(), "pending", 0, 0
	if lease > 0 {
		e.Attempts, e.Claim, e.LeaseEnds = 1, newClaim(), start.Add(lease)
	}
	c := *e
	c.Header = maps.Clone(e.Header)
	c.Body = slices.Clone(e.Body)
	m.events = append(m.events, &memEvent{Event: c, next: c.ReceivedAt.Add(lease)})
	return true
}

func (m *Memory) Claim(_ context.Context, limit int, lease time.Duration, ordered []string) ([]*Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	claim := newClaim()
	var out []*Event
	for _, e := range m.events {
		if len(out) >= limit {
			break
		}
		if e.Status != "pending" || e.next.After(now) || (e.OrderKey != "" && slices.Contains(ordered, e.Adapter) && m.earlierPending(e)) {
			continue
		}
		e.Attempts++
		e.next = now.Add(lease)
		e.Claim, e.LeaseEnds = claim, e.next
		c := e.Event
		out = append(out, &c)
	}
	return out, nil
}

func (m *Memory) earlierPending(e *memEvent) bool {
	for _, o := range m.events {
		if o.ID < e.ID && o.Adapter == e.Adapter && o.OrderKey == e.OrderKey && o.Status == "pending" {
			return true
		}
	}
	return false
}

// update applies f to the event of c.ID if it is still pending under c's
// claim.
func (m *Memory) update(c *Event, f func(*memEvent)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events {
		if e.ID == c.ID {
			if e.Status != "pending" || e.Claim == 0 || e.Claim != c.Claim {
				return ErrClaimLost
			}
			f(e)
			return nil
		}
	}
	return ErrNotFound
}

func (m *Memory) Renew(_ context.Context, evs []*Event, lease time.Duration) ([]*Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ends := time.Now().Add(lease)
	var held []int64
	for _, c := range evs {
		for _, e := range m.events {
			if e.ID == c.ID && e.Status == "pending" && e.Claim != 0 && e.Claim == c.Claim {
				e.next = ends
				held = append(held, e.ID)
			}
		}
	}
	return keep(evs, held, ends), nil
}

func (m *Memory) Delivered(_ context.Context, c *Event) error {
	return m.update(c, func(e *memEvent) { e.Status, e.Claim = "delivered", 0 })
}

func (m *Memory) Retry(_ context.Context, c *Event, next time.Time, reason string) error {
	return m.update(c, func(e *memEvent) { e.next, e.reason, e.Claim = next, reason, 0 })
}

func (m *Memory) DeadLetter(_ context.Context, c *Event, reason string) error {
	return m.update(c, func(e *memEvent) { e.Status, e.reason, e.Claim = "dead", reason, 0 })
}
