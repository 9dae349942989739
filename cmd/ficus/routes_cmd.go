package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/routes/revisions"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

func routesCmd() *cobra.Command {
	var path string
	c := &cobra.Command{Use: "routes", Short: "Check and compare route rules; apply, flip and roll back revisions of the rule store"}
	c.PersistentFlags().StringVarP(&path, "config", "c", "ficus.yaml", "process configuration file (for the rule store: routes.source postgres)")
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
	c.AddCommand(diffCmd(&path), applyCmd(&path), historyCmd(&path), showCmd(&path), rollbackCmd(&path),
		setWeightCmd(&path), stateCmd(&path), statusCmd(&path), resumeCmd(&path), abortCmd(&path))
	return c
}

var errChanges = errors.New("the rule sets differ")

// revisionRef matches an argument that names a revision of the rule
// store rather than a file: a number, or live.
var revisionRef = regexp.MustCompile(`^([0-9]+|live)$`)

func diffCmd(path *string) *cobra.Command {
	var exitCode bool
	c := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Show what changes from OLD to NEW: rule files, or revisions of the rule store (a number, or live); both are validated first",
		Long: "Each of OLD and NEW is a rule file, or a revision of the rule store: a number, or live (write ./7 for a file named 7).\n" +
			"ficus routes diff live next.yaml shows what applying next.yaml would change.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			show := func(files [2]*routes.File) error {
				changes := routes.Diff(files[0], files[1])
				if err := routes.WriteDiff(cmd.OutOrStdout(), changes); err != nil {
					return err
				}
				if exitCode && len(changes) > 0 {
					return errChanges
				}
				return nil
			}
			var files [2]*routes.File
			var errs [2]error
			store := false
			for i, a := range args {
				if revisionRef.MatchString(a) {
					store = true
					continue
				}
				files[i], errs[i] = routes.ParseFile(a)
			}
			if err := errors.Join(errs[:]...); err != nil {
				return err
			}
			if !store {
				return show(files)
			}
			return withRuleStore(cmd, *path, func(ctx context.Context, _ *config.Config, st *revisions.Store) error {
				for i, a := range args {
					if files[i] != nil {
						continue
					}
					rev, err := revisionArg(ctx, st, a)
					if err != nil {
						return err
					}
					if files[i], err = rev.Parse(); err != nil {
						return err
					}
				}
				return show(files)
			})
		},
	}
	c.Flags().BoolVar(&exitCode, "exit-code", false, "exit with 1 when there are changes (like git diff)")
	return c
}

// revisionArg reads the revision an argument names: a number or live.
func revisionArg(ctx context.Context, st *revisions.Store, arg string) (*revisions.Revision, error) {
	if arg == "live" {
		return st.Live(ctx)
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("%q is not a revision number", arg)
	}
	return st.Get(ctx, n)
}

// change is what every command that writes a revision takes: why, who,
// and whether to ask, store or only show.
type change struct {
	reason, author string
	yes, dryRun    bool
}

func (w *change) flags(c *cobra.Command) {
	c.Flags().StringVar(&w.reason, "reason", "", "why: kept with the revision and in the audit trail (required)")
	c.Flags().StringVar(&w.author, "author", "", "who (default $USER@hostname)")
	c.Flags().BoolVar(&w.yes, "yes", false, "store without asking (required when standard input is not a terminal)")
	c.Flags().BoolVar(&w.dryRun, "dry-run", false, "print what would be stored; store nothing")
}

// check refuses a change without a reason (a dry run needs none).
func (w *change) check() error {
	if !w.dryRun && strings.TrimSpace(w.reason) == "" {
		return errors.New("--reason is required: say why (it is kept with the revision and in the audit trail)")
	}
	return nil
}

func defaultAuthor() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// store validates d as a whole (rule file, then this configuration's
// checks: nothing is stored on any error), prints its changes against the
// live revision, asks for confirmation unless --yes (refusing when
// standard input is no terminal), and stores it as the next revision,
// refused if d's parent is no longer live.
func (w *change) store(ctx context.Context, cmd *cobra.Command, cfg *config.Config, st *revisions.Store, d revisions.Draft) error {
	plan, err := st.Plan(ctx, d, cfg.CheckRules)
	if err != nil {
		return fmt.Errorf("nothing stored:\n%w", err)
	}
	out := cmd.OutOrStdout()
	from, liveNumber := "no revision yet", plan.LiveNumber()
	if plan.Live != nil {
		from = plan.Live.Name() + " (live)"
	}
	fmt.Fprintf(out, "%s -> %s:\n", from, d.Name)
	if err := routes.WriteDiff(out, plan.Changes); err != nil {
		return err
	}
	if len(plan.Changes) == 0 {
		fmt.Fprintln(out, "nothing stored")
		return nil
	}
	if plan.Stale() {
		fmt.Fprintf(out, "warning: this change is based on revision %d but revision %d is live: storing it will be refused\n", d.Parent, liveNumber)
	}
	if w.dryRun {
		fmt.Fprintf(out, "dry run: nothing stored (it would be revision %d)\n", liveNumber+1)
		return nil
	}
	if !w.yes {
		in := cmd.InOrStdin()
		if !isTerminal(in) {
			return errors.New("nothing stored: standard input is not a terminal; add --yes to store without asking")
		}
		fmt.Fprintf(out, "store this as revision %d? [y/N] ", liveNumber+1)
		answer, _ := bufio.NewReader(in).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("not confirmed: nothing stored")
		}
	}
	p := d.Proposal
	if p.Author = w.author; p.Author == "" {
		p.Author = defaultAuthor()
	}
	p.Reason = w.reason
	rev, err := st.Apply(ctx, p)
	if err != nil {
		return fmt.Errorf("nothing stored: %w", err)
	}
	fmt.Fprintf(out, "stored revision %d (parent %d, by %s); every instance loads it within a second: ficus routes status\n", rev.Number, rev.Parent, p.Author)
	return nil
}

// terminal is a standard input that knows whether it is a terminal.
type terminal interface{ IsTerminal() bool }

// isTerminal reports whether r is an interactive terminal, where a
// confirmation can be asked.
func isTerminal(r io.Reader) bool {
	switch v := r.(type) {
	case terminal:
		return v.IsTerminal()
	case *os.File:
		return isatty.IsTerminal(v.Fd()) || isatty.IsCygwinTerminal(v.Fd())
	}
	return false
}

func applyCmd(path *string) *cobra.Command {
	var w change
	var parent int64
	c := &cobra.Command{
		Use:   "apply FILE",
		Short: "Validate a rule file as a whole, show its changes against the live revision and store it as the next revision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := w.check(); err != nil {
				return err
			}
			// Validated before the store is opened: an invalid file is
			// refused without a database.
			if _, err := routes.ParseFile(args[0]); err != nil {
				return fmt.Errorf("nothing stored:\n%w", err)
			}
			text, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("parent") {
				parent = -1 // the live revision
			}
			return withRuleStore(cmd, *path, func(ctx context.Context, cfg *config.Config, st *revisions.Store) error {
				d, err := st.ApplyDraft(ctx, args[0], string(text), parent)
				if err != nil {
					return err
				}
				return w.store(ctx, cmd, cfg, st, d)
			})
		},
	}
	w.flags(c)
	c.Flags().Int64Var(&parent, "parent", 0, "the revision FILE is based on (from ficus routes show); storing is refused if another one is live by then (default: the live one)")
	return c
}

func historyCmd(path *string) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "history",
		Short: "List the newest revisions of the rule store (* marks the live one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit must be at least 1 (got %d)", limit)
			}
			return withRuleStore(cmd, *path, func(ctx context.Context, _ *config.Config, st *revisions.Store) error {
				live, err := st.LiveNumber(ctx)
				if err != nil {
					return err
				}
				revs, err := st.History(ctx, limit)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "\tREV\tPARENT\tCREATED\tAUTHOR\tACTION\tREASON")
				for _, r := range revs {
					mark := ""
					if r.Number == live {
						mark = "*"
					}
					action := r.Action
					if r.Action != revisions.ActionApply && r.Detail != "" {
						action = r.Detail
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", mark, r.Number, orDash(r.Parent), r.CreatedAt.UTC().Format(time.RFC3339),
						r.Author, action, r.Reason)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 20, "how many")
	return c
}

func orDash(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func showCmd(path *string) *cobra.Command {
	return &cobra.Command{
		Use:   "show [REV]",
		Short: "Print a revision's rule file as stored (default: the live one); who, when and why go to standard error",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := "live"
			if len(args) == 1 {
				arg = args[0]
			}
			return withRuleStore(cmd, *path, func(ctx context.Context, _ *config.Config, st *revisions.Store) error {
				rev, err := revisionArg(ctx, st, arg)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "# revision %d (parent %s), %s by %s at %s: %s\n", rev.Number, orDash(rev.Parent), rev.Action,
					rev.Author, rev.CreatedAt.UTC().Format(time.RFC3339), rev.Reason)
				_, err = io.WriteString(cmd.OutOrStdout(), rev.Text)
				return err
			})
		},
	}
}

func rollbackCmd(path *string) *cobra.Command {
	var w change
	c := &cobra.Command{
		Use:   "rollback [REV]",
		Short: "Store a new revision with the rules of REV (default: the parent of the live revision)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := w.check(); err != nil {
				return err
			}
			var to int64
			if len(args) == 1 {
				n, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || n < 1 {
					return fmt.Errorf("%q is not a revision number", args[0])
				}
				to = n
			}
			return withRuleStore(cmd, *path, func(ctx context.Context, cfg *config.Config, st *revisions.Store) error {
				d, err := st.RollbackDraft(ctx, to)
				if err != nil {
					return err
				}
				return w.store(ctx, cmd, cfg, st, d)
			})
		},
	}
	w.flags(c)
	return c
}

// flip stores the draft that draft makes of the live revision
// (set-weight, state).
func (w *change) flip(cmd *cobra.Command, path string, draft func(ctx context.Context, st *revisions.Store) (revisions.Draft, error)) error {
	if err := w.check(); err != nil {
		return err
	}
	return withRuleStore(cmd, path, func(ctx context.Context, cfg *config.Config, st *revisions.Store) error {
		d, err := draft(ctx, st)
		var same *revisions.NoChangeError
		if errors.As(err, &same) {
			fmt.Fprintf(cmd.OutOrStdout(), "%s: nothing stored\n", same)
			return nil
		}
		if err != nil {
			return fmt.Errorf("nothing stored: %w", err)
		}
		return w.store(ctx, cmd, cfg, st, d)
	})
}

func setWeightCmd(path *string) *cobra.Command {
	var w change
	c := &cobra.Command{
		Use:   "set-weight ROUTE TARGET PERCENT",
		Short: "Rebalance a route's two-way split: TARGET gets PERCENT, the other side the rest (a route with one target becomes a split with the monolith)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			percent, err := strconv.Atoi(strings.TrimSuffix(args[2], "%"))
			if err != nil {
				return fmt.Errorf("PERCENT must be a whole number from 0 to 100 (got %q)", args[2])
			}
			return w.flip(cmd, *path, func(ctx context.Context, st *revisions.Store) (revisions.Draft, error) {
				return st.SetWeightDraft(ctx, args[0], args[1], percent)
			})
		},
	}
	w.flags(c)
	return c
}

func stateCmd(path *string) *cobra.Command {
	var w change
	var target string
	var percent int
	c := &cobra.Command{
		Use:   "state ROUTE legacy|canary|migrated",
		Short: "Put a route in a migration state: a split between its new upstream and the monolith of 0% (legacy), --percent (canary) or 100% (migrated) to the new upstream",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := routes.ParseState(args[1])
			if err != nil {
				return err
			}
			return w.flip(cmd, *path, func(ctx context.Context, rs *revisions.Store) (revisions.Draft, error) {
				return rs.StateDraft(ctx, args[0], st, target, percent)
			})
		},
	}
	w.flags(c)
	c.Flags().StringVar(&target, "target", "", "the route's new upstream (needed when the route has none yet)")
	c.Flags().IntVar(&percent, "percent", 0, "canary: the new upstream's share, 1-99 (needed unless the route is in canary already)")
	return c
}

func resumeCmd(path *string) *cobra.Command {
	var w change
	c := &cobra.Command{
		Use:   "resume ROUTE",
		Short: "Take the next step of a route's canary analysis that waits for a person (hold_before): raise its new upstream's weight to that step",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return w.flip(cmd, *path, func(ctx context.Context, st *revisions.Store) (revisions.Draft, error) {
				return st.ResumeDraft(ctx, args[0])
			})
		},
	}
	w.flags(c)
	return c
}

func abortCmd(path *string) *cobra.Command {
	var w change
	c := &cobra.Command{
		Use:   "abort ROUTE",
		Short: "Stop a route's canary: its new upstream's weight to 0% (the analysis takes no step from 0%)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return w.flip(cmd, *path, func(ctx context.Context, st *revisions.Store) (revisions.Draft, error) {
				return st.AbortDraft(ctx, args[0])
			})
		},
	}
	w.flags(c)
	return c
}

func statusCmd(path *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the live revision and the revision each running instance serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRuleStore(cmd, *path, func(ctx context.Context, cfg *config.Config, st *revisions.Store) error {
				out := cmd.OutOrStdout()
				status, err := st.Status(ctx, revisions.SilentAfter(cfg.Routes.PollInterval.Std(0)))
				if err != nil {
					return err
				}
				if live := status.Live; live == nil {
					fmt.Fprintln(out, "live revision: none yet (ficus routes apply FILE)")
				} else {
					fmt.Fprintf(out, "live revision: %d, %s by %s at %s: %s\n", live.Number, live.Action, live.Author,
						live.CreatedAt.UTC().Format(time.RFC3339), live.Reason)
				}
				tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "INSTANCE\tHOST\tPID\tREVISION\tSEEN\tSTATE")
				for _, in := range status.Instances {
					state := in.State
					if state == revisions.InstanceSilent {
						state = fmt.Sprintf("silent for %s (stopped?)", in.Silence.Round(time.Second))
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", in.ID, in.Hostname, in.PID, orDash(in.Revision),
						in.SeenAt.UTC().Format(time.RFC3339), state)
				}
				if len(status.Instances) == 0 {
					fmt.Fprintln(tw, "(no instance has reported yet)")
				}
				return tw.Flush()
			})
		},
	}
}
