package pgtest

import (
	"context"
	"testing"
)

func TestDatabasesAreIsolatedAndDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("first", func(t *testing.T) {
		p := NewPool(t)
		if _, err := p.Exec(ctx, "CREATE TABLE marker (id int)"); err != nil {
			t.Fatal(err)
		}
		if err := p.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	p := NewPool(t)
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'marker'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a fresh database sees another test's table")
	}
	if err := p.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s was not dropped after its test", name)
	}
}
