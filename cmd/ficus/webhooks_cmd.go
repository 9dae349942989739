package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ficus-gw/ficus/adapters/inbox"
	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/spf13/cobra"
)

func withInbox(cmd *cobra.Command, path string, f func(ctx context.Context, st *inbox.Store) error) error {
	cfg, sec, err := config.Load(path, config.ForStore)
	if err != nil {
		return err
	}
	if cfg.Store.Driver != "postgres" {
		return errors.New("this command needs store.driver: postgres (the in-memory inbox lives inside one running process)")
	}
	be, err := openBackend(cmd.Context(), cfg, sec, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer be.Close()
	if err := inbox.Migrate(cmd.Context(), be.pool); err != nil {
		return err
	}
	return f(cmd.Context(), inbox.New(be.pool))
}

func webhooksCmd() *cobra.Command {
	var path, adapter, status string
	var limit int
	var olderThan time.Duration
	root := &cobra.Command{Use: "webhooks", Short: "Inspect, replay and purge received web-hooks"}
	root.PersistentFlags().StringVarP(&path, "config", "c", "ficus.yaml", "process configuration file")
	list := &cobra.Command{
		Use: "list", Short: "List the newest events", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch status {
			case "", "pending", "delivered", "dead":
			default:
				return fmt.Errorf("--status must be pending, delivered or dead (got %q)", status)
			}
			if limit < 1 {
				return fmt.Errorf("--limit must be at least 1 (got %d)", limit)
			}
			return withInbox(cmd, path, func(ctx context.Context, st *inbox.Store) error {
				evs, err := st.List(ctx, adapter, status, limit)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ADAPTER\tEVENT ID\tRECEIVED\tSTATUS\tATTEMPTS\tLAST ERROR")
				for _, e := range evs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", e.Adapter, e.EventID, e.ReceivedAt.UTC().Format(time.RFC3339), e.Status, e.Attempts, e.LastError)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&adapter, "adapter", "", "only this adapter")
	list.Flags().StringVar(&status, "status", "", "only pending, delivered or dead")
	list.Flags().IntVar(&limit, "limit", 50, "how many")
	show := &cobra.Command{
		Use: "show ADAPTER EVENT_ID", Short: "Show one event with its headers and body", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withInbox(cmd, path, func(ctx context.Context, st *inbox.Store) error {
				e, err := st.Get(ctx, args[0], args[1])
				if err != nil {
					return fmt.Errorf("%s/%s: %w", args[0], args[1], err)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "adapter:   %s\nevent id:  %s\nreceived:  %s\nstatus:    %s\nattempts:  %d\n", e.Adapter, e.EventID,
					e.ReceivedAt.UTC().Format(time.RFC3339Nano), e.Status, e.Attempts)
				if e.LastError != "" {
					fmt.Fprintf(out, "last error: %s\n", e.LastError)
				}
				keys := make([]string, 0, len(e.Header))
				for k := range e.Header {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					for _, v := range e.Header[k] {
						fmt.Fprintf(out, "%s: %s\n", k, v)
					}
				}
				fmt.Fprintf(out, "\n%s\n", e.Body)
				return nil
			})
		},
	}
	replay := &cobra.Command{
		Use: "replay ADAPTER EVENT_ID", Short: "Deliver an event again (also from the dead letters)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withInbox(cmd, path, func(ctx context.Context, st *inbox.Store) error {
				if err := st.Replay(ctx, args[0], args[1]); err != nil {
					return fmt.Errorf("%s/%s: %w", args[0], args[1], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s queued for delivery\n", args[0], args[1])
				return nil
			})
		},
	}
	purge := &cobra.Command{
		Use: "purge", Short: "Delete delivered and dead events older than --older-than (pending ones are kept)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan < time.Hour {
				return errors.New("--older-than must be at least 1h (and longer than the senders' retry horizon: ids of purged events no longer count as duplicates)")
			}
			return withInbox(cmd, path, func(ctx context.Context, st *inbox.Store) error {
				n, err := st.Purge(ctx, adapter, time.Now().Add(-olderThan))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d events purged\n", n)
				return nil
			})
		},
	}
	purge.Flags().StringVar(&adapter, "adapter", "", "only this adapter")
	purge.Flags().DurationVar(&olderThan, "older-than", 31*24*time.Hour, "age of the events to delete: at least 1h, and longer than the senders' retry horizon (Adyen retries for 30 days)")
	root.AddCommand(list, show, replay, purge)
	return root
}
