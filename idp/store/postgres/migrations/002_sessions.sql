-- The web session layer (idp/session). Sessions and returning visitors are
-- known by the hash of their cookie's value only.
CREATE TABLE idp_sessions (
    hash            text PRIMARY KEY,
    visitor_hash    text NOT NULL DEFAULT '',
    level           text NOT NULL,
    user_id         text,
    customer_number text NOT NULL DEFAULT '',
    login_at        timestamptz,
    created_at      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    idle_expires    timestamptz NOT NULL,
    expires         timestamptz NOT NULL,
    attrs           jsonb NOT NULL DEFAULT '{}',
    -- When the row may go: at the first of its idle and absolute ends.
    purge_at        timestamptz GENERATED ALWAYS AS (least(idle_expires, expires)) STORED
);
CREATE INDEX idp_sessions_user ON idp_sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX idp_sessions_purge ON idp_sessions (purge_at);

CREATE TABLE idp_visitors (
    hash       text PRIMARY KEY,
    user_id    text,
    expires_at timestamptz NOT NULL
);
CREATE INDEX idp_visitors_user ON idp_visitors (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX idp_visitors_expires ON idp_visitors (expires_at);

-- The keys that sign JPTs: apart from idp_keys, so that they are never
-- published in the JWKS.
CREATE TABLE idp_jpt_keys (LIKE idp_keys INCLUDING ALL);
