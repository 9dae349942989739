package postgres

// Queued reports how many token inserts and refresh rotations wait for a
// commit.
func (s *Store) Queued() (inserts, rotations int) { return s.inserts.Queued(), s.rotations.Queued() }
