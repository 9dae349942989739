package inbox

// QueuedInserts reports how many inserts wait for a commit.
func (s *Store) QueuedInserts() int { return s.inserts.Queued() }
