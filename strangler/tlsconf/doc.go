// Package tlsconf is ficus's TLS, on both sides of the gateway: the
// certificate pairs its listeners serve and present to upstreams, reloaded
// from their files while ficus runs (Keypair); the server policy, a
// minimum version and TLS 1.2 cipher suites chosen by name from a safe set
// (Policy, Server); and the client side, a CA bundle, a server name and a
// client certificate for calls to https upstreams, the sidecar's service,
// a remote IDP and JWKS URLs (Client).
package tlsconf
