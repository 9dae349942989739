// Package federation is federated login: the ficus login page (and the web
// session layer's /auth/login) sends the browser to an upstream OpenID
// Provider — Entra ID, Google, Okta, Keycloak, any that publishes a
// discovery document — with the authorization code flow, PKCE, a nonce
// and a state; on its way back the ID token is verified against the
// upstream's JWKS (github.com/coreos/go-oidc), the upstream account is
// found or linked to a ficus user, or one is created just in time, and the
// login ends in an authorization code for the waiting client
// (idp.Provider.CompleteLogin) or in a logged-on web session.
//
// The login in progress is a FederatedLogin row known by the hash of a
// random handle that only the browser's cookie holds; the state, the
// nonce and the PKCE verifier are derived from the handle, so the store
// holds nothing that could finish a login, and the row is consumed once.
//
// Who is who (users.go): an upstream account is its (issuer, subject)
// pair, linked to one ficus user. Without a link, a verified e-mail may
// link it to the one existing user with that e-mail (link_by_verified_email),
// else a user is created (create_users), else the login is refused.
// Configured claims are copied onto the user at every login; a group
// claim maps to a level claim and to the scopes the user may be granted.
package federation
