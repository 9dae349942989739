// Package bridge is the gateway's legacy session bridge: the auth stage of
// routes with policy bridge. While users still log on at the monolith, a
// request to a new service that carries the monolith's session cookie is
// given a JWT for the user who owns that session.
//
// The bridge asks the monolith's "who am I" endpoint once per cookie value
// (sending that cookie only), caches the answer briefly by a hash of the
// value (never the value), collapses concurrent questions about one value
// into one call, maps the JSON answer by JSON pointers to a ficus user and
// mints a JWT for it with the identity provider of this process. The new
// service gets the JWT in place of the client's Authorization and the
// request without the session cookie; the monolith gets every request
// unchanged, its cookie included.
//
// "Not logged on" (a false flag, no user id, 401, 403 or a redirect) is
// cached too and ends a bridged identity at the next check, so a logout
// on the monolith reaches new services within the cache lifetime. A
// monolith that is down, slow or answers garbage gets the request a 503,
// never a JWT, and is counted in ficus_bridge_whoami_total.
package bridge
