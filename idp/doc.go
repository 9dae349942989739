// Package idp is ficus's OAuth2 identity provider: clients, users, grants,
// the opaque token store, introspection, revocation, signing keys and JWKS.
//
// Its PostgreSQL test helper, pgtest, is shared by every package whose tests
// need a real database.
package idp
