// Package adapters turns callers that cannot do OAuth2 — banks and payment
// providers posting web-hooks, early mobile apps — into ordinary OAuth2
// callers of the gateway, after verifying each sender's own proof of
// origin. Subpackage schemes holds the verification schemes.
package adapters
