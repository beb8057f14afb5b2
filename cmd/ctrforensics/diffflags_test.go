package main

import (
	"io"
	"testing"

	"github.com/urfave/cli/v3"
)

// diffCommands are the commands that compute a container's diff.
var diffCommands = []string{"diff", "harden", "commit", "collect", "packages", "scan", "browse"}

// TestDiffFlagsShared checks that every command that computes a diff takes
// the diff flags of diffFlags, with the same usage and default.
func TestDiffFlagsShared(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for _, name := range diffCommands {
		cmd := app.Command(name)
		if cmd == nil {
			t.Fatalf("no command %s", name)
		}
		for _, want := range diffFlags() {
			w := want.(*cli.StringFlag)
			var got *cli.StringFlag
			for _, f := range cmd.Flags {
				if sf, ok := f.(*cli.StringFlag); ok && sf.Name == w.Name {
					got = sf
				}
			}
			if got == nil || got.Usage != w.Usage || got.Value != w.Value {
				t.Errorf("%s --%s: %+v, want diffFlags' %+v", name, w.Name, got, w)
			}
		}
	}
}

// TestDiffFlagsValidated checks that every command that computes a diff
// rejects bad diff flags the same way, before it needs a daemon.
func TestDiffFlagsValidated(t *testing.T) {
	a := "--address=" + noDaemon
	extra := map[string][]string{"commit": {"-o", "x.tar"}, "collect": {"-o", "x.tar"}, "packages": {"--verify"}}
	for _, name := range diffCommands {
		if name == "browse" {
			continue // it needs a terminal first
		}
		t.Run(name, func(t *testing.T) {
			args := append([]string{a, name, "web"}, extra[name]...)
			assertUsageError(t, append(args, "--method", "fast"), `unknown --method "fast" (auto, overlay or walk)`)
			assertUsageError(t, append(args, "--max-hash-bytes", "lots"), `bad --max-hash-bytes "lots"`)
		})
	}
}
