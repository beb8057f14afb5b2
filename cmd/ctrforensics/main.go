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
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/forensic/objstore"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := appFor(args, stdout, stderr).Run(ctx, args)
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
	msg := oneLine(err.Error())
	if h := hint(err); h != "" {
		msg += " (" + h + ")"
	}
	fmt.Fprintln(stderr, "ctrforensics: "+msg)
	return exitUsage
}

// hint is the CLI's advice for an error: the flags and commands that library
// errors never name. It is the only place that adds them.
func hint(err error) string {
	var (
		unreachable *snapshot.UnreachableError
		noNamespace *snapshot.NamespaceNotFoundError
		notFound    *snapshot.NotFoundError
		ambiguous   *snapshot.AmbiguousError
		platform    *snapshot.PlatformError
		noSource    *noSuchSourceError
		noRoot      *snapshot.NoRootError
		unsupported *snapshot.UnsupportedSnapshotterError
		exists      *snapshot.ExistsError
		symlink     *imagefs.SymlinkError
		diskRoot    *snapshot.DiskRootError
		object      *objstore.AccessError
		objectURL   *objstore.URLError
		endpoint    *objstore.EndpointError
		onEvidence  *snapshot.IndexDirOnEvidenceError
	)
	if h := commitHint(err); h != "" {
		return h
	}
	if h := k8sHint(err); h != "" {
		return h
	}
	switch {
	case errors.As(err, &unreachable):
		return "is containerd running? set --address or CONTAINERD_ADDRESS"
	case errors.As(err, &noRoot) && len(noRoot.Candidates) > 0:
		return "give --root one of them"
	case errors.As(err, &noRoot):
		return "give --root a containerd root, e.g. /mnt/evidence/var/lib/containerd, or the top of the mounted disk"
	case errors.As(err, &unsupported):
		return "examine it on the live host with --address"
	case errors.As(err, &noNamespace):
		return "pick one with -n; list every container with `ctrforensics ls -A`"
	case errors.As(err, &noSource):
		return "list them with `ctrforensics ls` and `ctrforensics image ls`, or pick the namespace with -n"
	case errors.As(err, &notFound) && notFound.Kind == "image":
		return "list them with `ctrforensics image ls`, or pick the namespace with -n"
	case errors.As(err, &notFound):
		return "list them with `ctrforensics ls -A`, or pick the namespace with -n"
	case errors.As(err, &ambiguous):
		return "give more of the ID; `ctrforensics ls --no-trunc` shows whole IDs"
	case errors.As(err, &platform) && platform.Err != nil:
		return "give --platform as os/arch[/variant], e.g. linux/arm64"
	case errors.As(err, &platform):
		return "pick one with --platform"
	case errors.As(err, &exists):
		return "pick a new name for -o: ctrforensics never replaces a file"
	case errors.As(err, &diskRoot) && diskRoot.Op == snapshot.OpCreateImage:
		return "drop --import, and load the layout on a live host: ctr images import FILE.tar"
	case errors.As(err, &diskRoot):
		return "drop --pause: nothing runs on a dead host"
	case errors.As(err, &object):
		return objectHint(object)
	case errors.As(err, &objectURL):
		return "name the object as s3://BUCKET/KEY.tar.gz"
	case errors.As(err, &endpoint):
		return "give --s3-endpoint (or AWS_ENDPOINT_URL) as http(s)://HOST[:PORT]"
	case errors.As(err, &symlink):
		return "--no-follow prints the link's target"
	case errors.As(err, &onEvidence):
		return "give --index-dir a directory on the examiner's own disk, or --no-index"
	case errors.Is(err, os.ErrPermission) && os.Geteuid() != 0:
		return "run as root: sudo ctrforensics ..."
	}
	return ""
}

// findingsError makes the command exit 1: the check ran and found problems.
type findingsError struct{ msg string }

func (e *findingsError) Error() string { return e.msg }

// ExitCode is 1.
func (e *findingsError) ExitCode() int { return exitFindings }

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
func required(c *cli.Command, names ...string) error {
	for _, n := range names {
		if !c.IsSet(n) || c.String(n) == "" {
			return fmt.Errorf("missing --%s (see `%s --help`)", n, c.FullName())
		}
	}
	return nil
}

// configure gives every command the CLI's conventions: a flag error is one
// line, not a help page; a group without a subcommand shows its help, with an
// unknown one names it; --help shows the help of the command it follows.
func configure(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = func(_ context.Context, cc *cli.Command, err error, _ bool) error {
			return fmt.Errorf("%v (see `%s --help`)", err, cc.FullName())
		}
		if len(c.Commands) > 0 && c.Action == nil {
			c.Action = groupAction
		}
		c.CommandNotFound = showHelp
		configure(c.Commands)
	}
}

// showHelp shows c's help page. urfave calls it for `CMD ARG --help`, where
// it would otherwise look for a help topic named ARG.
func showHelp(ctx context.Context, c *cli.Command, _ string) {
	lineage := c.Lineage()
	switch {
	case len(lineage) == 1:
		_ = cli.ShowRootCommandHelp(c)
	case len(c.VisibleCommands()) == 0:
		_ = cli.ShowCommandHelp(ctx, lineage[1], c.Name)
	default:
		_ = cli.ShowSubcommandHelp(c)
	}
}

// groupAction runs a command that only groups subcommands: without an
// argument it shows the group's help, with one it names the unknown command.
func groupAction(_ context.Context, c *cli.Command) error {
	root := c.Root() == c
	switch {
	case c.Args().Present() && root:
		return fmt.Errorf("unknown command %q (see `%s --help`)", c.Args().First(), c.FullName())
	case c.Args().Present():
		return fmt.Errorf("unknown command %q for %q (see `%s --help`)", c.Args().First(), c.FullName(), c.FullName())
	case root:
		return cli.ShowRootCommandHelp(c)
	}
	return cli.ShowSubcommandHelp(c)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func newApp(stdout, stderr io.Writer) *cli.Command {
	app := &cli.Command{
		Name:    "ctrforensics",
		Usage:   "read-only forensics for containerd containers and images",
		Version: version.String(),
		Description: "ctrforensics shows what changed in a container, what an image contains, and seals evidence,\n" +
			"without starting, exec'ing into or writing to anything it examines. Flags may follow the\n" +
			"arguments; `--` ends the flags (for a container whose name starts with a dash).",
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		EnableShellCompletion:  true,
		ConfigureShellCompletionCommand: func(c *cli.Command) {
			c.Hidden = false
			c.Usage = "print a shell completion script: bash, zsh, fish or pwsh"
			configure([]*cli.Command{c})
		},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "address", Aliases: []string{"a"}, Sources: cli.EnvVars("CONTAINERD_ADDRESS"),
				Value: snapshot.DefaultAddress, Usage: "containerd gRPC socket"},
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Sources: cli.EnvVars("CONTAINERD_NAMESPACE"),
				Value: "default", Usage: "containerd namespace (k8s.io for Kubernetes, moby for Docker)"},
			&cli.StringFlag{Name: "root", Usage: "read a dead host's containerd root directory (or the top of its mounted disk) without a daemon, instead of --address"},
		},
		Commands: []*cli.Command{
			lsCommand(),
			diffCommand(),
			mountCommand(),
			umountCommand(),
			collectCommand(),
			commitCommand(),
			auditCommand(),
			scanCommand(),
			hardenCommand(),
			verifyCommand(),
			custodyCommand(),
			keyCommand(),
			cleanupCommand(),
			ownerCommand(),
			imageCommand(),
			packagesCommand(),
			browseCommand(),
			k8sCommand(),
			versionCommand(),
		},
		Action:        groupAction,
		ShellComplete: completeRoot,
		// Errors are printed once, by run, on one line.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		OnUsageError: func(_ context.Context, _ *cli.Command, err error, _ bool) error {
			return fmt.Errorf("%v (see `ctrforensics --help`)", err)
		},
	}
	app.CommandNotFound = showHelp
	configure(app.Commands)
	return app
}

// versionCommand prints what --version prints.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version (same as --version)",
		Action: func(_ context.Context, c *cli.Command) error {
			if _, err := args(c); err != nil {
				return err
			}
			_, err := fmt.Fprintf(c.Root().Writer, "%s version %s\n", c.Root().Name, c.Root().Version)
			return err
		},
	}
}

// completeRoot completes the command names, or the global flags. (urfave's
// default reads os.Args at the root, not the arguments run was given.)
func completeRoot(ctx context.Context, c *cli.Command) {
	if a := c.Args().Slice(); len(a) > 0 && strings.HasPrefix(a[len(a)-1], "-") {
		cli.DefaultCompleteWithFlags(ctx, c)
		return
	}
	for _, sub := range c.VisibleCommands() {
		fmt.Fprintf(c.Root().Writer, "%s:%s\n", sub.Name, sub.Usage)
	}
}

// completeContainer completes flags as urfave does and the CONTAINER argument
// with the IDs of the namespace's containers, when the daemon answers within
// a second (completion runs as the user, who may not be root).
func completeContainer(ctx context.Context, c *cli.Command) {
	a := c.Args().Slice()
	if len(a) > 0 && strings.HasPrefix(a[len(a)-1], "-") {
		cli.DefaultCompleteWithFlags(ctx, c)
		return
	}
	if len(a) > 0 || os.Geteuid() != 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	cl, err := snapshot.Connect(ctx, c.String("address"), c.String("namespace"))
	if err != nil {
		return
	}
	defer cl.Close()
	ctrs, err := cl.Containers(ctx, false)
	if err != nil {
		return
	}
	for _, ctr := range ctrs {
		fmt.Fprintln(c.Root().Writer, ctr.Info.ID)
	}
}

// needRoot fails unless this is a Linux host and the caller is root: what
// every command on containerd needs.
func needRoot() error { return hostError(runtime.GOOS, os.Geteuid()) }

// hostError tells why a command on containerd cannot run on goos as euid.
func hostError(goos string, euid int) error {
	if goos != "linux" {
		return fmt.Errorf("this command needs a Linux host running containerd; on %s, verify, custody, key, version and completion work", goos)
	}
	if euid != 0 {
		return errors.New("must run as root: containerd's socket and snapshot directories are root's only (try: sudo ctrforensics ...)")
	}
	return nil
}

// withClient checks the caller is root, connects to containerd and runs fn.
func withClient(ctx context.Context, c *cli.Command, fn func(ctx context.Context, cl *snapshot.Client) error) error {
	if err := needRoot(); err != nil {
		return err
	}
	cl, err := connect(ctx, c)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl)
}

// connect opens the source the global flags name: a disk root (--root) or
// the daemon's socket.
func connect(ctx context.Context, c *cli.Command) (*snapshot.Client, error) {
	dir := c.String("root")
	if dir == "" {
		return snapshot.Connect(ctx, c.String("address"), c.String("namespace"))
	}
	if c.IsSet("address") && c.String("address") != os.Getenv("CONTAINERD_ADDRESS") {
		return nil, errors.New("--root and --address exclude each other: give --root for a disk root, --address for a running containerd")
	}
	root, found, err := snapshot.FindRoot(dir)
	if err != nil {
		return nil, err
	}
	if found {
		fmt.Fprintf(c.Root().ErrWriter, "using containerd root %s\n", root)
	}
	cl, err := snapshot.OpenRoot(ctx, root, c.String("namespace"))
	if err != nil {
		return nil, err
	}
	cl.SetStateDir(c.String("state-dir")) // "" (the default) for a command without the flag
	for _, n := range cl.RootNotes() {
		fmt.Fprintln(c.Root().ErrWriter, "note: "+n)
	}
	return cl, nil
}

// args checks the number of positional arguments.
func args(c *cli.Command, names ...string) ([]string, error) {
	if c.NArg() == len(names) {
		return c.Args().Slice(), nil
	}
	return nil, fmt.Errorf("%s takes %d argument(s): %s (see `%s --help`)",
		c.Name, len(names), strings.Join(names, " "), c.FullName())
}

func formatFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "format", Value: "table", Usage: "output format: table or json (one object per line)"}
}
