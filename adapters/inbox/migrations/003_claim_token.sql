-- The token of the claim that holds a pending event: each claim (and each
-- InsertClaimed) writes a new one, and a worker renews its lease, marks an
-- event delivered, retried or dead only while the token is still its own,
-- so a worker whose lease ran out can no longer act on an event that
-- another worker has claimed since. NULL for an event never claimed.
ALTER TABLE webhook_inbox ADD COLUMN claim_token bigint;
