// Package session is the web session layer at the gateway's edge: the
// `policy: session` auth stage, the session and returning-visitor cookies
// on responses, the user context and the JPT a web app receives in request
// headers, the context updates it sends back in a response header, CSRF
// protection of state-changing requests, and the login and logout
// endpoints of the front door.
//
// The sessions themselves (their state, store, lifetimes, login through
// the identity provider, revocation and the JPT) belong to idp/session;
// this package turns browser requests into calls of its Manager.
package session
