-- The identity provider's tables. Tokens and secrets are stored as hashes only.
CREATE TABLE idp_clients (
    id                    text PRIMARY KEY,
    name                  text NOT NULL DEFAULT '',
    secrets               jsonb NOT NULL DEFAULT '[]',
    grants                text[] NOT NULL DEFAULT '{}',
    scopes                text[] NOT NULL DEFAULT '{}',
    redirect_uris         text[] NOT NULL DEFAULT '{}',
    audiences             text[] NOT NULL DEFAULT '{}',
    first_party           boolean NOT NULL DEFAULT false,
    access_ttl            bigint NOT NULL DEFAULT 0,
    logged_on_refresh_ttl bigint NOT NULL DEFAULT 0,
    returning_refresh_ttl bigint NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idp_users (
    id              text PRIMARY KEY,
    username        text NOT NULL UNIQUE,
    password_hash   text NOT NULL,
    customer_number text NOT NULL DEFAULT '',
    claims          jsonb NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idp_tokens (
    hash                text PRIMARY KEY,
    kind                text NOT NULL,
    client_id           text NOT NULL,
    user_id             text,
    scope               text NOT NULL DEFAULT '',
    level               text NOT NULL,
    family_id           text,
    issued_at           timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz,
    revoked_at          timestamptz,
    used_at             timestamptz,
    extra               jsonb,
    -- When the row may go: used refresh tokens stay until their family's
    -- absolute expiry, so that reuse is still detected.
    purge_at            timestamptz GENERATED ALWAYS AS (greatest(expires_at, coalesce(absolute_expires_at, expires_at))) STORED
);
CREATE INDEX idp_tokens_family ON idp_tokens (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX idp_tokens_user ON idp_tokens (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX idp_tokens_purge ON idp_tokens (purge_at);

CREATE TABLE idp_codes (
    hash                  text PRIMARY KEY,
    client_id             text NOT NULL,
    user_id               text NOT NULL,
    redirect_uri          text NOT NULL,
    scope                 text NOT NULL DEFAULT '',
    code_challenge        text NOT NULL,
    code_challenge_method text NOT NULL,
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz
);
CREATE INDEX idp_codes_expires ON idp_codes (expires_at);

CREATE TABLE idp_keys (
    id         text PRIMARY KEY,
    alg        text NOT NULL,
    private    bytea NOT NULL,
    sealed     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    active_at  timestamptz NOT NULL,
    retired_at timestamptz,
    expires_at timestamptz
);

CREATE TABLE idp_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    event      text NOT NULL,
    client_id  text NOT NULL DEFAULT '',
    user_id    text NOT NULL DEFAULT '',
    grant_type text NOT NULL DEFAULT '',
    outcome    text NOT NULL DEFAULT '',
    reason     text NOT NULL DEFAULT '',
    remote_ip  text NOT NULL DEFAULT ''
);
CREATE INDEX idp_audit_at ON idp_audit (at);
