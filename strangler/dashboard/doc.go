// Package dashboard is the migration dashboard: one server-rendered HTML
// page on the operational listener (or admin.listen) that shows where each
// route stands — legacy, shadow, canary with its percent, migrated — the
// share of traffic new services already serve, each route's error rate and
// latency on both sides as SVG charts, shadow parity with recent diff
// samples, circuit breakers, and the route revisions with who changed what
// and why.
//
// The page is readable without a token. Its buttons (a flip to another
// state, a rollback) call the admin API of routes/revisions on the same
// origin with an access token the operator pastes into the page: the
// static script sends it as an Authorization: Bearer header, keeps it in
// the page only (no cookie, no storage, no URL) and the admin API checks
// it (auth.AdminGuard) and writes the revision with its holder as author
// and the reason given. Because the admin API takes credentials only from
// that header, which a browser never adds by itself and never sends
// cross-origin without a CORS preflight that ficus does not answer, a
// forged cross-site request carries no authority: there is no CSRF to
// defend against.
//
// Everything is embedded (html/template, one stylesheet, one small script)
// and served under a strict Content-Security-Policy: no inline script or
// style, nothing from other origins. Charts are SVG drawn on the server.
package dashboard
