// Package idp is ficus's OAuth2 identity provider: clients, users, grants,
// the opaque token store, introspection, revocation, signing keys and JWKS.
package idp
