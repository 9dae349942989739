package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/strangler/tlsconf"
	"github.com/prometheus/client_golang/prometheus"
)

// The front door's HTTP/2 default: how many requests one connection may
// have in flight (listen.http2.max_concurrent_streams).
const defaultMaxConcurrentStreams = 250

// certExpiry is ficus_tls_certificate_expiry_seconds: when the certificate
// each listener serves now expires.
func certExpiry(reg prometheus.Registerer, listener string, kp *tlsconf.Keypair) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "ficus_tls_certificate_expiry_seconds",
		Help:        "When the certificate a listener serves now expires (Unix time); it follows reloads.",
		ConstLabels: prometheus.Labels{"listener": listener},
	}, func() float64 { return float64(kp.Leaf().NotAfter.Unix()) }))
}

// loadKeypair loads a listener's certificate (nil when t has none), logs
// what it serves and every reload, and exports its expiry.
func loadKeypair(key, listener string, t config.TLS, logger *slog.Logger, reg prometheus.Registerer) (*tlsconf.Keypair, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	var kp *tlsconf.Keypair
	kp, err := tlsconf.LoadKeypair(t.CertFile, t.KeyFile, func(changed bool, err error) {
		if err != nil {
			logger.Error("certificate not reloaded; the previous one keeps serving", "tls", key, "error", err.Error())
			return
		}
		logServed(logger, "certificate reloaded", key, kp)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	logServed(logger, "serving certificate", key, kp)
	certExpiry(reg, listener, kp)
	return kp, nil
}

func logServed(logger *slog.Logger, msg, key string, kp *tlsconf.Keypair) {
	leaf := kp.Leaf()
	level := slog.LevelInfo
	if time.Until(leaf.NotAfter) < 14*24*time.Hour {
		level = slog.LevelWarn
		msg += " (expires within 14 days)"
	}
	logger.Log(context.Background(), level, msg, "tls", key, "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// frontServer is the front door's http.Server: HTTP/1.1, HTTP/2 by ALPN
// when kp is set, HTTP/2 in clear text only with listen.h2c, and the
// HTTP/2 bounds of listen.http2.
func frontServer(l config.Listen, kp *tlsconf.Keypair, h http.Handler, errLog *slogWriter) (*http.Server, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(0),
		IdleTimeout:       l.IdleTimeout.Std(0),
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		ErrorLog:          errLog.logger(),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	streams := l.HTTP2.MaxConcurrentStreams
	if streams == 0 {
		streams = defaultMaxConcurrentStreams
	}
	// The header list an HTTP/2 client may send is bounded by
	// MaxHeaderBytes, as for HTTP/1.1.
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	if kp != nil {
		tc, err := tlsconf.Server(kp, l.TLS.Policy())
		if err != nil {
			return nil, fmt.Errorf("listen.tls: %w", err)
		}
		srv.TLSConfig = tc
		srv.Protocols.SetHTTP2(true)
	}
	srv.Protocols.SetUnencryptedHTTP2(l.H2C && kp == nil)
	return srv, nil
}

// adminServer is the admin API's own listener's http.Server: HTTPS with
// kp under admin.tls's policy when kp is set.
func adminServer(t config.TLS, kp *tlsconf.Keypair, h http.Handler, errLog *slogWriter) (*http.Server, error) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog.logger()}
	if kp != nil {
		tc, err := tlsconf.Server(kp, t.Policy())
		if err != nil {
			return nil, fmt.Errorf("admin.tls: %w", err)
		}
		srv.TLSConfig = tc
	}
	return srv, nil
}

// redirectHost is a Host header fit to be put in a redirect: a DNS name,
// an IPv4 address or a bracketed IPv6 address, with an optional port.
var redirectHost = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

// redirectServer answers every request on listen.redirect_http with a 308
// to https on the same host, path and query; the port is the front
// door's (none when it is 443). It serves nothing else: no ACME http-01,
// no health checks. Its bounds are tight, as it only reads headers.
func redirectServer(frontAddr string, errLog *slogWriter) *http.Server {
	port := ""
	if _, p, err := net.SplitHostPort(frontAddr); err == nil && p != "443" {
		port = ":" + p
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if !redirectHost.MatchString(host) {
			http.Error(w, "bad Host header", http.StatusBadRequest)
			return
		}
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
		target := "https://" + host + port + r.URL.RequestURI()
		if r.URL.Path == "" || !strings.HasPrefix(r.URL.RequestURI(), "/") {
			target = "https://" + host + port + "/" // an absolute-form or asterisk request
		}
		w.Header().Set("Location", target)
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusPermanentRedirect)
	})
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog.logger(),
	}
}

// remoteIDPClient is how the gateway calls a remote IDP: with
// gateway.remote_idp.tls (a private CA, a client certificate), each call
// bounded by timeout.
func remoteIDPClient(cfg *config.Config, logger *slog.Logger, timeout time.Duration) (*http.Client, error) {
	rt := cfg.Gateway.RemoteIDP.TLS
	if rt == (config.ClientTLS{}) {
		return &http.Client{Timeout: timeout}, nil
	}
	c, err := rt.Client().HTTPClient(timeout, func(changed bool, err error) {
		if err != nil {
			logger.Error("remote IDP client certificate not reloaded; the previous one stays", "error", err.Error())
		} else {
			logger.Info("remote IDP client certificate reloaded")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("gateway.remote_idp.tls: %w", err)
	}
	return c, nil
}

// serveMaybeTLS serves srv on ln, over TLS when srv has a TLS config.
func serveMaybeTLS(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "") // the certificate comes from GetCertificate
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
