package testimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// busyboxCandidates are the host paths searched for a static busybox, in
// order (Debian's busybox-static installs both).
func busyboxCandidates() []string {
	return []string{"/usr/bin/busybox", "/bin/busybox"}
}

// FindBusybox returns the path of the host's statically linked busybox. It
// fails with an "install busybox-static" hint when none is found or when
// the installed busybox is dynamically linked (and therefore useless in a
// scratch image).
func FindBusybox() (string, error) {
	var errs []error
	for _, p := range busyboxCandidates() {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !st.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("%s: not a regular file", p))
			continue
		}
		static, err := isStatic(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !static {
			errs = append(errs, fmt.Errorf("%s is dynamically linked", p))
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no static busybox found (install busybox-static): %w", errors.Join(errs...))
}

// isStatic reports whether the ELF binary at p has no program interpreter.
func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, fmt.Errorf("read ELF %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// Busybox returns the files of a minimal busybox root filesystem built from
// the host's static busybox: the directories /bin /etc /tmp (1777) /root
// /var /proc /sys /dev, the binary /bin/busybox (0755), a symlink
// /bin/<applet> -> busybox for every applet listed by `busybox --list`, and
// /etc/passwd, /etc/group and /etc/shadow (with fake hashes) defining root,
// www-data and nobody. It fails with an "install busybox-static" hint when
// the host has no static busybox.
func Busybox(ctx context.Context) ([]File, error) {
	bin, err := FindBusybox()
	if err != nil {
		return nil, err
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bin, err)
	}
	applets, err := busyboxApplets(ctx, bin)
	if err != nil {
		return nil, err
	}

	files := []File{
		Dir("/bin", 0o755),
		Dir("/dev", 0o755),
		Dir("/etc", 0o755),
		Dir("/proc", 0o555),
		Dir("/root", 0o700),
		Dir("/sys", 0o555),
		Dir("/tmp", 0o1777),
		Dir("/var", 0o755),
		{Path: "/bin/busybox", Type: tar.TypeReg, Mode: 0o755, Content: content},
	}
	for _, a := range applets {
		files = append(files, Symlink("/bin/"+a, "busybox"))
	}
	files = append(files,
		Reg("/etc/passwd", 0o644, ""+
			"root:x:0:0:root:/root:/bin/sh\n"+
			"www-data:x:33:33:www-data:/var/www:/bin/false\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		Reg("/etc/group", 0o644, ""+
			"root:x:0:\n"+
			"shadow:x:42:\n"+
			"www-data:x:33:\n"+
			"nogroup:x:65534:\n"),
		File{Path: "/etc/shadow", Type: tar.TypeReg, Mode: 0o640, GID: 42, Content: []byte("" +
			"root:$6$ctrforensics$FAKEHASHfakehashFAKEHASHfakehashFAKEHASHfakehashFAKEHASHfakehash00:19724:0:99999:7:::\n" +
			"www-data:*:19724:0:99999:7:::\n" +
			"nobody:*:19724:0:99999:7:::\n")},
	)
	return files, nil
}

// busyboxApplets runs `bin --list` and returns the sorted applet names,
// excluding "busybox" itself.
func busyboxApplets(ctx context.Context, bin string) ([]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--list")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s --list: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	seen := map[string]bool{}
	var applets []string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		if a == "" || a == "busybox" || strings.Contains(a, "/") || seen[a] {
			continue
		}
		seen[a] = true
		applets = append(applets, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse %s --list: %w", bin, err)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list returned no applets", bin)
	}
	sort.Strings(applets)
	return applets, nil
}
