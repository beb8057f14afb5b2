package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// imageSameBench checks that a faster binary prints what an older one
// printed: every image command, in every format, on the Debian image (when
// cached), the suspect image (whiteouts, an opaque directory, gzip, zstd and
// plain layers, a hidden secret) and a generated image of files files, stdout,
// stderr and exit status compared byte for byte. It is the guard of a
// performance change, run with -before; it prints one line per command.
func imageSameBench(ctx context.Context, bin, before string, files int) error {
	if before == "" {
		return errors.New("the imagesame suite compares two binaries: give -before OLD_BINARY")
	}
	d, c, ctx, stop, err := startDaemon(ctx)
	if err != nil {
		return err
	}
	defer stop()
	type target struct {
		ref  string
		cats []string
	}
	var targets []target
	if _, err := os.Stat(debianTar()); err == nil {
		img, err := debianImage(debianTar())
		if err != nil {
			return err
		}
		if err := importOnly(ctx, c, img); err != nil {
			return err
		}
		targets = append(targets, target{img.Name, []string{"/etc/debian_version", "/bin/sh", "/usr/share/doc/bash/copyright",
			"/var/lib/dpkg/status", "/etc/nonexistent", "/etc"}})
	}
	suspect, err := testimage.SuspectImage(ctx)
	if err != nil {
		return err
	}
	if err := importOnly(ctx, c, suspect); err != nil {
		return err
	}
	targets = append(targets, target{suspect.Name, []string{"/root/.ssh/id_rsa", "/opt/app/a", "/opt/app/new", "/usr/bin/helper", "/bin/sh"}})
	gen := generatedImage("docker.io/bench/same:files", files, 5)
	if err := importOnly(ctx, c, gen); err != nil {
		return err
	}
	targets = append(targets, target{gen.Name, []string{"/l0/d0000/f0000000", fmt.Sprintf("/l4/d%04d/f%07d", 4*(files/5)/1000, 4*(files/5))}})
	cf := []string{"--address", d.Address, "-n", d.Namespace}
	fmt.Printf("\nimage commands, %s against %s, stdout, stderr and exit status\n\n", bin, before)
	differ := 0
	for _, tg := range targets {
		cmds := [][]string{
			{"image", "files", tg.ref}, {"image", "files", "--format", "json", tg.ref}, {"image", "files", "--digest", tg.ref},
			{"image", "layers", tg.ref}, {"image", "layers", "--format", "json", tg.ref}, {"image", "layers", "--show-hidden", tg.ref},
		}
		for _, p := range tg.cats {
			cmds = append(cmds, []string{"image", "cat", tg.ref, p}, []string{"image", "cat", "--no-follow", tg.ref, p},
				[]string{"image", "cat", "--layer", "0", tg.ref, p})
		}
		for _, args := range cmds {
			a, err := runCaptured(before, append(cf, args...))
			if err != nil {
				return err
			}
			b, err := runCaptured(bin, append(cf, args...))
			if err != nil {
				return err
			}
			verdict := "same"
			if why := a.differ(b); why != "" {
				verdict, differ = "DIFFER: "+why, differ+1
			}
			fmt.Printf("%-6s %s (%d bytes)\n", verdict, strings.Join(args, " "), len(b.stdout))
		}
	}
	if differ > 0 {
		return fmt.Errorf("%d command(s) print something else than %s", differ, before)
	}
	return nil
}

// captured is what one run printed and how it exited.
type captured struct {
	stdout, stderr []byte
	code           int
}

func runCaptured(bin string, args []string) (captured, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return captured{out.Bytes(), errb.Bytes(), exit.ExitCode()}, nil
	case err != nil:
		return captured{}, err
	}
	return captured{out.Bytes(), errb.Bytes(), 0}, nil
}

// differ says how b differs from a, "" when it does not.
func (a captured) differ(b captured) string {
	switch {
	case a.code != b.code:
		return fmt.Sprintf("exit %d, was %d", b.code, a.code)
	case !bytes.Equal(a.stdout, b.stdout):
		return "stdout " + firstDiff(a.stdout, b.stdout)
	case !bytes.Equal(a.stderr, b.stderr):
		return "stderr " + firstDiff(a.stderr, b.stderr)
	}
	return ""
}

// firstDiff names the first line where b differs from a.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: %.120q, was %.120q", i+1, y, x)
		}
	}
	return ""
}
