package main

import (
	"errors"
	"fmt"

	"github.com/ficus-gw/ficus/routes"
	"github.com/spf13/cobra"
)

func routesCmd() *cobra.Command {
	c := &cobra.Command{Use: "routes", Short: "Check and compare route rule files"}
	c.AddCommand(&cobra.Command{
		Use:   "validate FILE...",
		Short: "Validate rule files; every problem is reported with file:line:column",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := 0
			for _, p := range args {
				f, err := routes.ParseFile(p)
				if err != nil {
					bad++
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d routes, %d upstreams, monolith %s)\n", p, len(f.Routes), len(f.Upstreams), f.Monolith)
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d files invalid", bad, len(args))
			}
			return nil
		},
	})
	var exitCode bool
	diff := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Show what changes from OLD to NEW (both are validated first)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			old, err1 := routes.ParseFile(args[0])
			new, err2 := routes.ParseFile(args[1])
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			changes := routes.Diff(old, new)
			if err := routes.WriteDiff(cmd.OutOrStdout(), changes); err != nil {
				return err
			}
			if exitCode && len(changes) > 0 {
				return errChanges
			}
			return nil
		},
	}
	diff.Flags().BoolVar(&exitCode, "exit-code", false, "exit with 1 when there are changes (like git diff)")
	c.AddCommand(diff)
	return c
}

var errChanges = errors.New("the files differ")
