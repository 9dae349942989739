// Package revisions is the PostgreSQL rule store: every rule set applied
// to a fleet of ficus instances, kept as a numbered revision (the whole
// validated rule file as submitted, its author, reason, time and parent),
// a live pointer, an audit row per change, and a heartbeat row per running
// instance saying which revision it serves.
//
// Changes are optimistic: a Proposal names the revision it is based on
// (its parent), and Apply stores it only if that revision is still live,
// checked under a row lock on the live pointer in the same transaction as
// the insert; otherwise Apply refuses with a *ConflictError carrying the
// live revision and the changes the proposal would have overwritten. The
// transaction also sends the new revision's number on the NOTIFY channel
// Channel, so the change reaches the instances when it commits.
//
// A Follower runs in each instance: it loads the live revision at start,
// LISTENs on Channel, polls as a safety net, resyncs after a lost
// connection, and loads every new revision through the gateway's atomic
// swap (strangler.Gateway.Load).
package revisions
