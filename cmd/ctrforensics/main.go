// Command ctrforensics examines containers and images on a containerd host
// without running anything and without changing the evidence.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ctrforensics/ctrforensics/internal/version"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// Exit codes.
const (
	exitOK          = 0
	exitFindings    = 1 // findings or a failed verification, where a command has them
	exitUsage       = 2 // usage or environment error
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var coded interface{ ExitCode() int }
	switch {
	case errors.As(err, &coded) && coded.ExitCode() == exitFindings:
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "ctrforensics: "+msg)
		}
		return exitFindings
	case ctx.Err() != nil && onlyCancelled(err):
		fmt.Fprintln(stderr, "ctrforensics: interrupted; every mount, view and lease of this run was removed")
		return exitInterrupted
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "ctrforensics: interrupted, and cleaning up failed: "+oneLine(err.Error())+" (run `ctrforensics cleanup`)")
		return exitInterrupted
	}
	fmt.Fprintln(stderr, "ctrforensics: "+oneLine(err.Error()))
	return exitUsage
}

// onlyCancelled tells whether every error joined in err is a cancellation.
func onlyCancelled(err error) bool {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if e != nil && !onlyCancelled(e) {
				return false
			}
		}
		return true
	}
	if wrapped := errors.Unwrap(err); wrapped != nil && !errors.Is(err, context.Canceled) {
		return onlyCancelled(wrapped)
	}
	return errors.Is(err, context.Canceled)
}

// required checks flags that must be given; urfave's own check would print
// the whole help page.
func required(c *cli.Context, names ...string) error {
	for _, n := range names {
		if !c.IsSet(n) || c.String(n) == "" {
			return fmt.Errorf("missing --%s (see `%s --help`)", n, c.Command.HelpName)
		}
	}
	return nil
}

// usageErrorsOnOneLine makes every command report a flag error as one line,
// instead of printing its help page.
func usageErrorsOnOneLine(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = func(cc *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%v (see `%s --help`)", err, cc.Command.HelpName)
		}
		usageErrorsOnOneLine(c.Subcommands)
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "ctrforensics",
		Usage:   "read-only forensics for containerd containers and images",
		Version: version.String(),
		Description: "ctrforensics shows what changed in a container, what an image contains, and seals evidence,\n" +
			"without starting, exec'ing into or writing to anything it examines.",
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "address", Aliases: []string{"a"}, EnvVars: []string{"CONTAINERD_ADDRESS"},
				Value: snapshot.DefaultAddress, Usage: "containerd gRPC socket"},
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, EnvVars: []string{"CONTAINERD_NAMESPACE"},
				Value: "default", Usage: "containerd namespace (k8s.io for Kubernetes, moby for Docker)"},
		},
		Commands: []*cli.Command{
			lsCommand(),
			diffCommand(),
			mountCommand(),
			umountCommand(),
			collectCommand(),
			verifyCommand(),
			custodyCommand(),
			keyCommand(),
			cleanupCommand(),
			imageCommand(),
		},
		// Errors are printed once, by run, on one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%v (see `ctrforensics --help`)", err)
		},
	}
	usageErrorsOnOneLine(app.Commands)
	return app
}

// withClient checks the caller is root, connects to containerd and runs fn.
func withClient(c *cli.Context, fn func(ctx context.Context, cl *snapshot.Client) error) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root: containerd's socket and snapshot directories are root's only (try: sudo ctrforensics ...)")
	}
	cl, err := snapshot.Connect(c.Context, c.String("address"), c.String("namespace"))
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(c.Context, cl)
}

// args checks the number of positional arguments.
func args(c *cli.Context, names ...string) ([]string, error) {
	if c.NArg() == len(names) {
		return c.Args().Slice(), nil
	}
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("flags go before arguments: `ctrforensics %s [flags] %s`", c.Command.Name, strings.Join(names, " "))
		}
	}
	return nil, fmt.Errorf("%s takes %d argument(s): %s (see `ctrforensics %s --help`)",
		c.Command.Name, len(names), strings.Join(names, " "), c.Command.Name)
}

func formatFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "format", Value: "table", Usage: "output format: table or json (one object per line)"}
}
