// Command ficus is the strangler-fig migration gateway: one binary that
// routes every path to the legacy monolith or to a new service.
//
//	ficus demo                      an all-in-one demo on loopback
//	ficus serve --config FILE       the gateway
//	ficus config validate -c FILE   check a process configuration and its route file
//	ficus routes validate FILE...   check rule files
//	ficus routes diff OLD NEW       what a rule change would change
//	ficus routes apply FILE         store a revision in the route store
//	                                (also history, show, rollback, set-weight, state, status)
//	ficus healthcheck --config FILE  exit 0 when its /readyz answers 200
//	ficus version
//
// This package only parses flags, loads configuration and wires the
// packages together (serve.go composes the server, process.go runs it);
// the logic lives in routes/, strangler/, idp/ and adapters/.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetIn(stdin)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "ficus:", err)
		return 1
	}
	return 0
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "ficus",
		Short:         "Strangler-fig migration gateway",
		Long:          "Ficus routes every path to the legacy monolith or to a new service, by rules that migration teams flip gradually.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what ficus version prints.
		Version: buildVersion(),
	}
	root.SetVersionTemplate("ficus {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(), demoCmd(), routesCmd(), idpCmd(), migrateCmd(), sidecarCmd(), webhooksCmd(), versionCmd(), configCmd())
	root.AddCommand(healthcheckCmd())
	return root
}
