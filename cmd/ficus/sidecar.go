package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ficus-gw/ficus/strangler/tlsconf"
	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/spf13/cobra"
)

func sidecarCmd() *cobra.Command {
	var listen, upstream, jwks, audience, issuer string
	var scopes []string
	var own struct{ cert, key, clientCA, minVersion string }
	var up, idp tlsconf.Client
	c := &cobra.Command{
		Use:   "sidecar",
		Short: "Verify ficus JWTs offline in front of one service (zero trust), then forward",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			upURL, err := url.Parse(upstream)
			if err != nil || upURL.Scheme == "" || upURL.Host == "" {
				return errors.New("--upstream must be an absolute http(s) URL")
			}
			if !up.IsZero() && upURL.Scheme != "https" {
				return errors.New("--upstream-ca, --upstream-server-name, --upstream-cert and --upstream-key are for an https --upstream")
			}
			if (own.cert == "") != (own.key == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			if own.cert == "" && (own.clientCA != "" || own.minVersion != "") {
				return errors.New("--client-ca and --tls-min-version need --tls-cert and --tls-key")
			}
			var rules []verify.ScopeRule
			for _, s := range scopes {
				r, err := verify.ParseScopeRule(s)
				if err != nil {
					return err
				}
				rules = append(rules, r)
			}
			stderr := cmd.ErrOrStderr()
			reloaded := func(what string) func(bool, error) {
				return func(_ bool, err error) {
					if err != nil {
						fmt.Fprintf(stderr, "ficus sidecar: %s not reloaded, the previous one stays: %v\n", what, err)
					} else {
						fmt.Fprintf(stderr, "ficus sidecar: %s reloaded\n", what)
					}
				}
			}
			jwksClient, err := idp.HTTPClient(10*time.Second, reloaded("JWKS client certificate"))
			if err != nil {
				return fmt.Errorf("--jwks-ca, --jwks-cert, --jwks-key: %w", err)
			}
			v, err := verify.New(cmd.Context(), verify.Options{JWKSURL: jwks, Audience: audience, Issuer: issuer, Client: jwksClient})
			if err != nil && v == nil {
				return err
			}
			if err != nil {
				fmt.Fprintln(stderr, "ficus sidecar: warning:", err, "(retrying on the first request)")
			}
			var upTLS *tls.Config
			if !up.IsZero() {
				if upTLS, err = up.Config(reloaded("upstream client certificate")); err != nil {
					return fmt.Errorf("--upstream-ca, --upstream-cert, --upstream-key: %w", err)
				}
			}
			h, err := verify.SidecarTLS(v, upURL, rules, upTLS)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			var kp *tlsconf.Keypair
			if own.cert != "" {
				if kp, err = tlsconf.LoadKeypair(own.cert, own.key, reloaded("certificate")); err != nil {
					return fmt.Errorf("--tls-cert, --tls-key: %w", err)
				}
				if srv.TLSConfig, err = tlsconf.Server(kp, tlsconf.Policy{MinVersion: own.minVersion}); err != nil {
					return fmt.Errorf("--tls-min-version: %w", err)
				}
				if own.clientCA != "" {
					// Only callers with a certificate from this CA (the
					// gateway's) get past the handshake.
					if srv.TLSConfig.ClientCAs, err = tlsconf.LoadCAs(own.clientCA); err != nil {
						return fmt.Errorf("--client-ca: %w", err)
					}
					srv.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			scheme := "http"
			if kp != nil {
				scheme = "https"
				go func() {
					if err := kp.Watch(cmd.Context()); err != nil {
						fmt.Fprintln(stderr, "ficus sidecar: cannot watch the certificate's files; it is not reloaded:", err)
					}
				}()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ficus sidecar on %s://%s -> %s (audience %s, client certificates %s)\n", scheme, ln.Addr(), upURL, audience,
				map[bool]string{true: "required", false: "not asked"}[own.clientCA != ""])
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if kp != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to serve")
	c.Flags().StringVar(&upstream, "upstream", "", "the service behind the sidecar")
	c.Flags().StringVar(&jwks, "jwks", "", "the IDP's JWKS URL")
	c.Flags().StringVar(&audience, "audience", "", "the audience JWTs must carry (the service's)")
	c.Flags().StringVar(&issuer, "issuer", "", "the issuer JWTs must carry (recommended)")
	c.Flags().StringArrayVar(&scopes, "scope", nil, "PREFIX=scope1,scope2: scopes required below a path prefix, matched like a route prefix (repeatable; the most specific prefix wins)")
	c.Flags().StringVar(&own.cert, "tls-cert", "", "serve HTTPS (HTTP/2 by ALPN) with this certificate, reloaded when its file changes (with --tls-key)")
	c.Flags().StringVar(&own.key, "tls-key", "", "the key of --tls-cert")
	c.Flags().StringVar(&own.clientCA, "client-ca", "", "require a client certificate issued by a CA of this PEM bundle (the gateway's): mTLS")
	c.Flags().StringVar(&own.minVersion, "tls-min-version", "", "oldest TLS version served: 1.2 (default) or 1.3")
	c.Flags().StringVar(&up.CAFile, "upstream-ca", "", "PEM bundle of the CAs trusted for an https --upstream (default: the system's)")
	c.Flags().StringVar(&up.ServerName, "upstream-server-name", "", "name the --upstream's certificate must carry (default: its host)")
	c.Flags().StringVar(&up.CertFile, "upstream-cert", "", "client certificate presented to the --upstream (with --upstream-key)")
	c.Flags().StringVar(&up.KeyFile, "upstream-key", "", "the key of --upstream-cert")
	c.Flags().StringVar(&idp.CAFile, "jwks-ca", "", "PEM bundle of the CAs trusted for an https --jwks (default: the system's)")
	c.Flags().StringVar(&idp.CertFile, "jwks-cert", "", "client certificate presented to --jwks (with --jwks-key)")
	c.Flags().StringVar(&idp.KeyFile, "jwks-key", "", "the key of --jwks-cert")
	_ = c.MarkFlagRequired("upstream")
	_ = c.MarkFlagRequired("jwks")
	_ = c.MarkFlagRequired("audience")
	return c
}
