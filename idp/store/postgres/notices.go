package postgres

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Notices carries token revocations between the instances on one
// database (PublishRevocations, ListenRevocations): the
// idp/revocation.Notices of a PostgreSQL deployment.
type Notices struct {
	Pool *pgxpool.Pool
	// Logger receives lost connections of the listener. Nil discards.
	Logger *slog.Logger
}

// Publish tells every listening instance that tokens were revoked.
func (n Notices) Publish(ctx context.Context, hashes []string) error {
	return PublishRevocations(ctx, n.Pool, hashes)
}

// Listen calls onRevoked with the hashes of every notice until ctx ends,
// and onReset whenever its connection was lost.
func (n Notices) Listen(ctx context.Context, onRevoked func(hashes []string), onReset func()) {
	log := n.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ListenRevocations(ctx, n.Pool, log, onRevoked, onReset)
}
