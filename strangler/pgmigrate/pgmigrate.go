// Package pgmigrate applies a package's embedded PostgreSQL schema
// migrations with jackc/tern, under tern's advisory lock, so that many
// ficus instances may start at once against one database.
//
// Each package that keeps state in PostgreSQL owns its migrations and its
// version table (the IDP's store: idp_schema_version, the web-hook inbox:
// adapters_schema_version) and applies them through Apply; none imports
// another's store to migrate itself. The runner belongs to none of those
// stores, and the repository's top level is fixed, so it lives under
// strangler/, beside clientaddr: the small packages there depend only on
// the standard library and drivers, and any part of ficus may import them.
package pgmigrate

import (
	"context"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// Apply applies the tern migrations in fsys (001_name.sql … at its root;
// see fs.Sub) that versionTable does not list yet, under tern's advisory
// lock. Migrations already applied are skipped, so calling it at every
// start is the intended use.
func Apply(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, versionTable string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), versionTable)
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(fsys); err != nil {
		return err
	}
	return m.Migrate(ctx)
}
