-- OpenID Connect: per-client post-logout redirect URIs and subject type,
-- the authentication behind a code and a refresh family (auth_time, amr,
-- sid), the nonce of a code, and the methods of a browser session's login.
ALTER TABLE idp_clients
    ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
    ADD COLUMN subject_type              text NOT NULL DEFAULT '',
    ADD COLUMN sector_identifier         text NOT NULL DEFAULT '';

ALTER TABLE idp_codes
    ADD COLUMN nonce text NOT NULL DEFAULT '',
    ADD COLUMN auth  jsonb;

ALTER TABLE idp_tokens ADD COLUMN auth jsonb;

ALTER TABLE idp_sessions ADD COLUMN amr text[];
