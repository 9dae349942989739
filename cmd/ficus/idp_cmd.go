package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/idp"
	"github.com/ficus-gw/ficus/idp/store/postgres"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/spf13/cobra"
)

// withProvider opens the configured PostgreSQL store and runs f with a
// provider on it. The CLI needs a persistent store: the memory store of a
// running process cannot be reached from another process.
func withProvider(cmd *cobra.Command, path string, f func(ctx context.Context, p *idp.Provider) error) error {
	cfg, sec, err := config.Load(path, config.ForIDP)
	if err != nil {
		return err
	}
	if cfg.Store.Driver != "postgres" {
		return errors.New("this command needs store.driver: postgres (the in-memory store lives inside one running process)")
	}
	ctx := cmd.Context()
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	be, err := openBackend(ctx, cfg, sec, logger, nil)
	if err != nil {
		return err
	}
	defer be.Close()
	p, err := newProvider(ctx, cfg, sec, be.idp, logger, nil, nil) // commands log no one in, trace nothing
	if err != nil {
		return err
	}
	defer p.Close()
	// What a command revokes (a deleted client's tokens, a disabled user's)
	// reaches the running instances' caches as a revocation there does.
	p.OnRevoke(func(hashes []string) {
		if err := postgres.PublishRevocations(ctx, be.pool, hashes); err != nil {
			logger.Warn("tokens revoked, but the running instances were not told: they refuse them when their cache expires (gateway.cache_ttl)", "error", err.Error())
		}
	})
	return f(ctx, p)
}

func migrateCmd() *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations of every store: the IDP's, the route store's, the web-hook inbox's (serve also applies them at start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sec, err := config.Load(path, config.ForStore)
			if err != nil {
				return err
			}
			if cfg.Store.Driver != "postgres" {
				return errors.New("nothing to migrate: store.driver is memory")
			}
			be, err := openBackend(cmd.Context(), cfg, sec, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				return err
			}
			defer be.Close()
			if err := revisions.Migrate(cmd.Context(), be.pool); err != nil {
				return fmt.Errorf("route store migrations: %w", err)
			}
			if err := inbox.Migrate(cmd.Context(), be.pool); err != nil {
				return fmt.Errorf("webhook inbox migrations: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return nil
		},
	}
	c.Flags().StringVarP(&path, "config", "c", "ficus.yaml", "process configuration file")
	return c
}

func idpCmd() *cobra.Command {
	var path string
	root := &cobra.Command{Use: "idp", Short: "Manage the identity provider: clients, users, signing keys"}
	root.PersistentFlags().StringVarP(&path, "config", "c", "ficus.yaml", "process configuration file")
	run := func(f func(ctx context.Context, cmd *cobra.Command, args []string, p *idp.Provider) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			return withProvider(cmd, path, func(ctx context.Context, p *idp.Provider) error { return f(ctx, cmd, args, p) })
		}
	}

	client := &cobra.Command{Use: "client", Short: "OAuth2 clients"}
	var nc idp.NewClient
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Create a client; its secret is printed once and only its hash is kept",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, cmd *cobra.Command, args []string, p *idp.Provider) error {
			nc.ID = args[0]
			secret, err := p.CreateClient(ctx, nc)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "client_id:     %s\n", nc.ID)
			if secret != "" {
				fmt.Fprintf(out, "client_secret: %s\n(shown once: store it now)\n", secret)
			}
			return nil
		}),
	}
	create.Flags().StringVar(&nc.Name, "name", "", "display name (shown on the consent page)")
	create.Flags().StringSliceVar(&nc.Grants, "grant", nil, "allowed grant (repeatable): client_credentials, password, refresh_token, authorization_code, "+idp.GrantTokenExchange+", introspection")
	create.Flags().StringSliceVar(&nc.Scopes, "scope", nil, "allowed scope (repeatable)")
	create.Flags().StringSliceVar(&nc.RedirectURIs, "redirect-uri", nil, "registered redirect URI (repeatable; matched exactly)")
	create.Flags().StringSliceVar(&nc.Audiences, "audience", nil, "audience it may ask JWTs for (token exchange; repeatable)")
	create.Flags().BoolVar(&nc.FirstParty, "first-party", false, "a first-party client (may use the password grant when enabled)")
	create.Flags().DurationVar(&nc.AccessTTL, "access-ttl", 0, "access-token lifetime for this client (default: idp.access_ttl)")
	create.Flags().DurationVar(&nc.LoggedOnRefreshTTL, "logged-on-refresh-ttl", 0, "logged-on session length for this client (default: idp.logged_on_refresh_ttl)")
	create.Flags().DurationVar(&nc.ReturningRefreshTTL, "returning-refresh-ttl", 0, "returning refresh lifetime for this client (default: idp.returning_refresh_ttl)")
	create.Flags().BoolVar(&nc.Public, "public", false, "a public client without a secret (authorization_code with PKCE only)")
	create.Flags().StringSliceVar(&nc.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil,
		"where OpenID Connect logout may send the browser back to (repeatable; matched exactly)")
	create.Flags().StringVar(&nc.SubjectType, "subject-type", "public", "OpenID Connect subject type: public (the user id) or pairwise (a pseudonym per sector)")
	create.Flags().StringVar(&nc.SectorIdentifier, "sector-identifier", "", "host pairwise subjects are computed for (default: the host of the redirect URIs)")
	client.AddCommand(create,
		&cobra.Command{
			Use: "list", Short: "List clients", Args: cobra.NoArgs,
			RunE: run(func(ctx context.Context, cmd *cobra.Command, _ []string, p *idp.Provider) error {
				cs, err := p.ListClients(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tGRANTS\tSCOPES\tSECRETS\tCREATED")
				for _, c := range cs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Name, strings.Join(c.Grants, ","), strings.Join(c.Scopes, ","), len(c.Secrets), c.CreatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			}),
		},
		&cobra.Command{
			Use: "delete ID", Short: "Delete a client", Args: cobra.ExactArgs(1),
			RunE: run(func(ctx context.Context, cmd *cobra.Command, args []string, p *idp.Provider) error {
				if err := p.DeleteClient(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "client %s deleted\n", args[0])
				return nil
			}),
		},
		&cobra.Command{
			Use: "rotate-secret ID", Short: "Give a client a new secret; the old one stays valid for idp.secret_grace (24h)", Args: cobra.ExactArgs(1),
			RunE: run(func(ctx context.Context, cmd *cobra.Command, args []string, p *idp.Provider) error {
				s, err := p.RotateSecret(ctx, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\n(shown once; the previous secret works until %s)\n", s,
					time.Now().Add(p.Config().SecretGrace).UTC().Format(time.RFC3339))
				return nil
			}),
		},
	)

	user := &cobra.Command{Use: "user", Short: "End users"}
	var nu idp.NewUser
	var pwStdin bool
	var claims []string
	userCreate := &cobra.Command{
		Use: "create USERNAME", Short: "Create a user (password from --password-stdin, or generated and printed once)", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, cmd *cobra.Command, args []string, p *idp.Provider) error {
			nu.Username = args[0]
			nu.Claims = map[string]any{}
			for _, kv := range claims {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--claim %q: use name=value", kv)
				}
				nu.Claims[k] = v
			}
			pw, generated, err := readPassword(cmd.InOrStdin(), pwStdin)
			if err != nil {
				return err
			}
			nu.Password = pw
			id, err := p.CreateUser(ctx, nu)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user_id: %s\n", id)
			if generated {
				fmt.Fprintf(cmd.OutOrStdout(), "password: %s\n(shown once)\n", pw)
			}
			return nil
		}),
	}
	userCreate.Flags().StringVar(&nu.CustomerNumber, "customer-number", "", "customer number (a JWT claim)")
	userCreate.Flags().StringArrayVar(&claims, "claim", nil, "profile claim name=value copied into JWTs (repeatable)")
	userCreate.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input")
	var spStdin bool
	setPW := &cobra.Command{
		Use: "set-password USERNAME", Short: "Set a user's password; all their tokens are revoked", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, cmd *cobra.Command, args []string, p *idp.Provider) error {
			u, err := p.UserByName(ctx, args[0])
			if err != nil {
				return fmt.Errorf("user %s: %w", args[0], err)
			}
			pw, generated, err := readPassword(cmd.InOrStdin(), spStdin)
			if err != nil {
				return err
			}
			if err := p.SetPassword(ctx, u.ID, pw); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "password changed; every token of the user was revoked")
			if generated {
				fmt.Fprintf(cmd.OutOrStdout(), "password: %s\n(shown once)\n", pw)
			}
			return nil
		}),
	}
	setPW.Flags().BoolVar(&spStdin, "password-stdin", false, "read the password from standard input")
	user.AddCommand(userCreate, setPW, &cobra.Command{
		Use: "disable USERNAME", Short: "Disable a user; all their tokens are revoked", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, cmd *cobra.Command, args []string, p *idp.Provider) error {
			u, err := p.UserByName(ctx, args[0])
			if err != nil {
				return fmt.Errorf("user %s: %w", args[0], err)
			}
			if err := p.SetUserEnabled(ctx, u.ID, false); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "user disabled; every token of the user was revoked")
			return nil
		}),
	})

	keys := &cobra.Command{Use: "keys", Short: "JWT signing keys"}
	keys.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List signing keys", Args: cobra.NoArgs,
			RunE: run(func(ctx context.Context, cmd *cobra.Command, _ []string, p *idp.Provider) error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tSIGNS UNTIL\tPUBLISHED UNTIL")
				now := time.Now()
				for _, k := range p.Keys().Keys() {
					state := "signing"
					switch {
					case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
						state = "expired"
					case k.ActiveAt.After(now):
						state = "next (published)"
					case !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt):
						state = "retired (published)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Alg, state, ts(k.ActiveAt), ts(k.RetiredAt), ts(k.ExpiresAt))
				}
				return tw.Flush()
			}),
		},
		&cobra.Command{
			Use: "rotate", Short: "Add a new key: running instances publish it within 30 s, it signs after idp.key_publish_delay, and the old key stays published until its JWTs expired", Args: cobra.NoArgs,
			RunE: run(func(ctx context.Context, cmd *cobra.Command, _ []string, p *idp.Provider) error {
				k, err := p.Keys().Rotate(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "new key %s (%s) stored; published by the running instances within 30 s; it signs from %s\n", k.ID, k.Alg, ts(k.ActiveAt))
				return nil
			}),
		},
	)
	root.AddCommand(client, user, keys)
	return root
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// readPassword reads a password line from r, or generates one.
func readPassword(r io.Reader, fromStdin bool) (pw string, generated bool, err error) {
	if fromStdin {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && line == "" {
			return "", false, errors.New("no password on standard input")
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), true, nil
}
