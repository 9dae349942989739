// Package shadow compares a new service's answers with the monolith's
// before the new service takes real users: the comparison engine, the
// noise it learns, and each route's results (counters, a bounded sample
// of recent mismatches, a parity score).
//
// The gateway (package strangler) copies a share of a route's requests to
// the route's shadow upstream after the monolith's answer reached the
// client, on a Mirror: one bounded queue and a fixed set of workers per
// gateway. A full queue drops the copy and counts it, so the client's
// response is never slowed or changed. This package knows nothing of how
// the copy is sent; it compares two Responses under a route's Rule and
// keeps the results.
//
// Paths into JSON bodies are JSON pointers (RFC 6901, e.g. /meta/time),
// where a token * stands for any one key or array index
// (/items/*/updated_at). A pointer names its value and everything below
// it. Learned noise works as Twitter's Diffy does: with learn_noise the
// monolith is asked a second time for the same request, and every place
// where its two answers differ is noise from then on, ignored in the
// comparison with the new service.
package shadow
