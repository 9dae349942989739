package postgres

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RevocationChannel is the NOTIFY channel that carries revoked token
// hashes between instances.
const RevocationChannel = "ficus_revocations"

// PublishRevocations tells every instance listening on the database that
// tokens were revoked (hashes, space separated, in notices under
// PostgreSQL's 8000-byte payload limit).
func PublishRevocations(ctx context.Context, pool *pgxpool.Pool, hashes []string) error {
	const perNotice = 100 // 64-character hashes
	for len(hashes) > 0 {
		n := min(perNotice, len(hashes))
		if _, err := pool.Exec(ctx, `SELECT pg_notify($1, $2)`, RevocationChannel, strings.Join(hashes[:n], " ")); err != nil {
			return err
		}
		hashes = hashes[n:]
	}
	return nil
}

// ListenRevocations calls onRevoked with the hashes of every revocation
// notice until ctx ends. Whenever the listening connection is lost (and so
// notices may have been missed) it calls onReset before listening again,
// so that callers can drop what they cached.
func ListenRevocations(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, onRevoked func([]string), onReset func()) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, pool, onRevoked, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		log.Warn("revocation listener lost its connection; caches flushed, reconnecting", "error", err.Error())
		onReset()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func listenOnce(ctx context.Context, pool *pgxpool.Pool, onRevoked func([]string), connected func()) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries LISTEN state: it never goes back to the pool.
	conn := c.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{RevocationChannel}.Sanitize()); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		onRevoked(strings.Fields(n.Payload))
	}
}
