package strangler

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/sony/gobreaker/v2"
)

// StatusClientClosedRequest answers a request whose client went away before
// the answer was ready (nginx's 499; no standard code exists).
const StatusClientClosedRequest = 499

// errNotSent marks a failure that happened before any of the request
// reached the upstream: the breaker was open or the connection could not be
// made. Such a request may safely go to the monolith instead.
var errNotSent = errors.New("request not sent")

type notSentError struct{ err error }

func (e *notSentError) Error() string { return "upstream not reached: " + e.err.Error() }
func (e *notSentError) Unwrap() []error {
	return []error{errNotSent, e.err}
}

var (
	// errUpstreamStatus is what a 502, 503 or 504 from an upstream counts
	// as in its breaker.
	errUpstreamStatus = errors.New("upstream answered 502, 503 or 504")
	// errClientFault is what a failure caused by the client counts as in a
	// breaker: nothing (the breakers exclude it).
	errClientFault = errors.New("client fault")
	// errAttemptOver is what the transport reads from a client's body once
	// the attempt that sent it is over.
	errAttemptOver = errors.New("ficus: request body read after the request ended")
)

// dialFailed reports whether err happened while connecting, before any of
// the request was written.
func dialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// The upstream's certificate was refused (unknown CA, wrong name,
	// expired): the handshake ended before a byte of the request left.
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// clientBodyStatus is the answer to a request whose body could not be read:
// 413 over the size limit, 499 when the client went away mid-body, 408 when
// it was too slow for the server's read timeout, 400 for a malformed body
// (bad chunked encoding).
func clientBodyStatus(err error) int {
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, context.Canceled):
		return StatusClientClosedRequest
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}

// upstreamStatus is the answer to a request its upstream did not answer,
// as Caddy's statusError has it: 503 while the breaker is open, 504 on a
// timeout, 502 otherwise.
func upstreamStatus(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func statusText(code int) string {
	if code == StatusClientClosedRequest {
		return "Client Closed Request"
	}
	return http.StatusText(code)
}
