package pgmigrate_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/ficus-gw/ficus/strangler/pgmigrate"
	"github.com/ficus-gw/ficus/strangler/pgtest"
)

func migrations(files ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i+1 < len(files); i += 2 {
		m[files[i]] = &fstest.MapFile{Data: []byte(files[i+1])}
	}
	return m
}

// Two packages, each with its own migrations and version table, on one
// database; instances starting at once apply each migration once.
func TestEachPackageMigratesItsOwnSchemaOnce(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	a := migrations("001_a.sql", "CREATE TABLE a (id int);", "002_a_more.sql", "ALTER TABLE a ADD COLUMN n int;")
	b := migrations("001_b.sql", "CREATE TABLE b (id int);")
	errs := make(chan error, 6)
	for range 3 {
		go func() { errs <- pgmigrate.Apply(ctx, pool, a, "a_schema_version") }()
		go func() { errs <- pgmigrate.Apply(ctx, pool, b, "b_schema_version") }()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for table, want := range map[string]int32{"a_schema_version": 2, "b_schema_version": 1} {
		var v int32
		if err := pool.QueryRow(ctx, "SELECT version FROM "+table).Scan(&v); err != nil || v != want {
			t.Fatalf("%s: version %d (%v), want %d", table, v, err, want)
		}
	}
	if _, err := pool.Exec(ctx, "INSERT INTO a (id, n) VALUES (1, 2); INSERT INTO b (id) VALUES (1)"); err != nil {
		t.Fatalf("the migrated tables: %v", err)
	}
}

func TestAFailingMigrationIsReported(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	bad := migrations("001_bad.sql", "CREATE TABLE;")
	if err := pgmigrate.Apply(context.Background(), pool, bad, "bad_schema_version"); err == nil {
		t.Fatal("a migration with a syntax error applied")
	}
}
