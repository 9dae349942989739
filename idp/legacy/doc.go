// Package legacy checks passwords against a legacy monolith for the IDP's
// lazy credential migration (idp.LegacyUsers): while users still live in
// the monolith, the first login of a user who is not a ficus user yet is
// checked here and, on success, the IDP creates the ficus user with its
// own argon2id hash of the password, so users move with no password reset.
//
// Two checkers: HTTP posts the credentials to a monolith login endpoint
// (form or JSON; success by a 2xx answer or by a redirect to a success
// URL; the user's ids and claims read from its JSON answer by JSON
// pointers), and Postgres runs a read-only query on the legacy database
// and verifies the stored hash itself (bcrypt as PHP's password_hash,
// Rails' has_secure_password and Devise, and Spring Security's {bcrypt},
// write it; PBKDF2-SHA256 as Django writes it).
//
// Both tell "wrong credentials" (an error wrapping idp.ErrLegacyDenied)
// apart from "the legacy system could not answer" (any other error),
// which the IDP answers with 503, never with "wrong password". Neither
// logs a password or a hash.
package legacy
