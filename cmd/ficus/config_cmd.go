package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ficus-gw/ficus/cmd/ficus/internal/config"
	"github.com/ficus-gw/ficus/routes"
	"github.com/spf13/cobra"
)

func configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Check the process configuration"}
	var path string
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration as serve would load it, with its route file; every problem at once, with file:line",
		Long: `Validate loads the configuration the way serve does: every field, the secrets it
refers to (read from their environment variables and files), the listener
addresses, the TLS files, and the route file (routes.source file) with the
checks serve makes of it. It prints every problem at once, each with
file:line where it has one, and exits 1 if there is any. It opens no
listener and no database: what only a database can tell is named as not
checked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			problems, notes := checkConfig(path)
			for _, p := range problems {
				fmt.Fprintln(cmd.ErrOrStderr(), p)
			}
			if len(problems) > 0 {
				if len(problems) == 1 {
					return fmt.Errorf("%s: 1 problem", path)
				}
				return fmt.Errorf("%s: %d problems", path, len(problems))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: ok\n", path)
			for _, n := range notes {
				fmt.Fprintln(out, "  not checked:", n)
			}
			return nil
		},
	}
	validate.Flags().StringVarP(&path, "config", "c", "ficus.yaml", "process configuration file")
	c.AddCommand(validate)
	return c
}

// checkConfig checks the configuration at path as serve loads it and
// returns every problem, one a line, and what it could not check
// without a database.
func checkConfig(path string) (problems, notes []string) {
	cfg, errs := config.Check(path, config.ForServe)
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	if cfg == nil {
		return problems, nil
	}
	for _, l := range []struct {
		field string
		tls   config.TLS
	}{{"listen.tls", cfg.Listen.TLS}, {"admin.tls", cfg.Admin.TLS}} {
		if l.tls.CertFile == "" || l.tls.KeyFile == "" || !exists(l.tls.CertFile) || !exists(l.tls.KeyFile) {
			continue // a missing file is a problem of the configuration above
		}
		if _, err := tls.LoadX509KeyPair(l.tls.CertFile, l.tls.KeyFile); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", path, l.field, err))
		}
	}
	switch {
	case cfg.RoutesFromStore():
		notes = append(notes, "the rules of the route store (routes.source postgres): check a file with ficus routes validate FILE before ficus routes apply FILE")
	case cfg.Routes.File != "" && exists(cfg.Routes.File):
		p, bridges := checkRuleFile(cfg)
		problems = append(problems, p...)
		if bridges && cfg.IDPEnabled() {
			notes = append(notes, "that the IDP knows the clients the route file's bridges name (they are in its store)")
		}
	}
	if cfg.Store.Driver == "postgres" {
		notes = append(notes, "the database of store.dsn: not connected (no schema checked, nothing written)")
	}
	return problems, notes
}

// checkRuleFile parses the route file and checks it against the
// configuration as serve does before it serves the file; bridges says
// whether the file has legacy session bridges.
func checkRuleFile(cfg *config.Config) (problems []string, bridges bool) {
	f, err := routes.ParseFile(cfg.Routes.File)
	var rerrs routes.Errors
	switch {
	case errors.As(err, &rerrs):
		out := make([]string, len(rerrs))
		for i, e := range rerrs {
			out[i] = e.Error()
		}
		return out, false
	case err != nil:
		return []string{err.Error()}, false
	}
	if err := cfg.CheckRules(f); err != nil {
		return []string{err.Error()}, len(f.Bridges) > 0
	}
	return nil, len(f.Bridges) > 0
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// versionLine is what ficus version and ficus --version print.
func versionLine(w io.Writer) {
	fmt.Fprintln(w, "ficus", buildVersion())
}
