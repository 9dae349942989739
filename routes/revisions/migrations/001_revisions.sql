-- Route revisions: every rule set ever applied, as submitted, numbered.
CREATE TABLE route_revisions (
    number     bigint PRIMARY KEY CHECK (number > 0),
    -- The revision that was live when this one was applied; NULL for the first.
    parent     bigint REFERENCES route_revisions (number),
    body       text NOT NULL,
    author     text NOT NULL,
    reason     text NOT NULL,
    -- apply, rollback, set-weight or state.
    action     text NOT NULL,
    -- What the action asked, in words (e.g. "rollback to 4").
    detail     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The live pointer: one row. Every change locks it first (FOR UPDATE), so
-- changes are serialised and an apply based on an older revision is seen.
CREATE TABLE route_live (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    revision   bigint REFERENCES route_revisions (number),
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO route_live (id, revision) VALUES (true, NULL);

-- Who changed the live rules, what and why: one row per change, written in
-- the change's transaction.
CREATE TABLE route_audit (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    revision bigint NOT NULL REFERENCES route_revisions (number),
    previous bigint REFERENCES route_revisions (number),
    detail   text NOT NULL,
    reason   text NOT NULL
);
CREATE INDEX route_audit_at ON route_audit (at);

-- Each running instance and the revision it serves (its heartbeat).
CREATE TABLE route_instances (
    instance_id text PRIMARY KEY,
    hostname    text NOT NULL,
    pid         integer NOT NULL,
    revision    bigint,
    started_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL
);
