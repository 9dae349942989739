package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/spf13/cobra"
)

func sidecarCmd() *cobra.Command {
	var listen, upstream, jwks, audience, issuer string
	var scopes []string
	c := &cobra.Command{
		Use:   "sidecar",
		Short: "Verify ficus JWTs offline in front of one service (zero trust), then forward",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			up, err := url.Parse(upstream)
			if err != nil || up.Scheme == "" || up.Host == "" {
				return errors.New("--upstream must be an absolute http(s) URL")
			}
			var rules []verify.ScopeRule
			for _, s := range scopes {
				r, err := verify.ParseScopeRule(s)
				if err != nil {
					return err
				}
				rules = append(rules, r)
			}
			v, err := verify.New(cmd.Context(), verify.Options{JWKSURL: jwks, Audience: audience, Issuer: issuer})
			if err != nil && v == nil {
				return err
			}
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ficus sidecar: warning:", err, "(retrying on the first request)")
			}
			h, err := verify.Sidecar(v, up, rules)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "ficus sidecar on %s -> %s (audience %s)\n", ln.Addr(), up, audience)
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
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
	_ = c.MarkFlagRequired("upstream")
	_ = c.MarkFlagRequired("jwks")
	_ = c.MarkFlagRequired("audience")
	return c
}
