-- Federated login through upstream OpenID Providers (idp/federation).
-- An upstream account, known by (issuer, subject), is linked to one ficus
-- user; a user has at most one link per issuer.
CREATE TABLE idp_federated_links (
    issuer     text NOT NULL,
    subject    text NOT NULL,
    user_id    text NOT NULL REFERENCES idp_users (id) ON DELETE CASCADE,
    provider   text NOT NULL,
    -- The upstream's tokens sealed with the key-encryption key; only with
    -- keep_upstream_tokens.
    tokens     bytea,
    created_at timestamptz NOT NULL,
    last_login timestamptz NOT NULL,
    PRIMARY KEY (issuer, subject),
    UNIQUE (issuer, user_id)
);
CREATE INDEX idp_federated_links_user ON idp_federated_links (user_id);

-- Linking by e-mail looks users up by their e-mail claim.
CREATE INDEX idp_users_email ON idp_users (lower(claims->>'email')) WHERE claims ? 'email';

-- Logins in progress at an upstream provider, by the hash of the handle in
-- the browser's cookie; each consumed once.
CREATE TABLE idp_federated_logins (
    id         text PRIMARY KEY,
    provider   text NOT NULL,
    pending    bytea NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX idp_federated_logins_expires ON idp_federated_logins (expires_at);
