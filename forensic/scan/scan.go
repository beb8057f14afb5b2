// Package scan looks for what an attacker leaves in a filesystem: web shells,
// executables in temporary and hidden directories, setuid files and file
// capabilities added after the image, persistence, rogue accounts,
// reverse-shell one-liners, miner configurations, and package-owned files
// that no longer match their package (from packages --verify results). Each rule has a stable
// ID (CTRF-FS-...), a severity, and gives a one-line reason naming the
// evidence.
//
// The files come from an Input: a container's changes or its whole root
// (ChangesInput, TreeInput: read by descriptor through internal/fdio, never
// by path, never following a symbolic link, with O_NOATIME), or an image's
// layers, including the files that later layers delete (LayersInput).
//
// Invariants: nothing here writes to the filesystem it scans; content is
// read at most once per file, up to Options.MaxFileBytes and within
// Options.FileTimeout, and every file whose content was not read in full is
// listed in Report.Skipped with the reason. The package imports no containerd
// code.
package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/packages"
)

// Defaults for Options.
const (
	DefaultMaxFileBytes int64 = 32 << 20
	DefaultFileTimeout        = 10 * time.Second
	// headBytes is how much of every regular file is read to tell ELF
	// binaries, scripts and text apart.
	headBytes = 4096
)

// File is one filesystem entry as an Input yields it.
type File struct {
	// Path is absolute in the scanned root filesystem.
	Path string
	Type forensic.FileType
	// Mode holds the permission bits and the setuid, setgid and sticky bits.
	Mode     uint32
	UID, GID uint32
	Size     int64
	// Capability is the security.capability extended attribute, if any.
	Capability []byte
	// Change says how the entry differs from the image (forensic.Added or
	// forensic.Changed); empty when it is as the image has it, or for an
	// image's own files.
	Change forensic.Kind
	// BaseMode and BaseCapability are the image's mode and
	// security.capability of a changed entry.
	BaseMode       uint32
	BaseCapability []byte
	// Layer is the index of the image layer the entry comes from, or -1.
	Layer int
	// Hidden says a later layer deletes or replaces the entry: the image's
	// final filesystem does not show it.
	Hidden bool
	// Package is the check of the file against its package's record, when
	// Options.Packages has one for it (never for a hidden file).
	Package *packages.Result
}

// An Input yields the files to scan. It calls fn for every entry with a
// reader of its content (nil but for regular files); the reader is valid
// only during the call. A non-nil skip error from the Input's own reading is
// passed to fn as a reader that fails.
type Input interface {
	Walk(ctx context.Context, fn func(f *File, content io.Reader) error) error
}

// Options tune a scan.
type Options struct {
	// MaxFileBytes bounds how much of a file is read; a larger file has only
	// its head examined and is reported as skipped. Zero means
	// DefaultMaxFileBytes.
	MaxFileBytes int64
	// FileTimeout bounds the time spent reading one file. Zero means
	// DefaultFileTimeout.
	FileTimeout time.Duration
	// Matchers run on the content of every file read in full (for example
	// YARA rules); their findings join the built-in ones.
	Matchers []Matcher
	// Packages are the results of checking the scanned filesystem's
	// package-owned files against their package manager's records
	// (packages.VerifyDir, packages.VerifyImage): a file of the final
	// filesystem whose result is modified or config-modified fires
	// RulePackageModified.
	Packages []packages.Result
}

// A Matcher looks at the bytes of one file.
type Matcher interface {
	Match(ctx context.Context, f *File, content []byte) ([]Finding, error)
}

// Finding is one rule that fired on one file.
type Finding struct {
	Rule     string
	Severity finding.Severity
	Title    string
	// Path is the file, absolute in the scanned root filesystem.
	Path string
	// Reason says in one line why the rule fired, naming the evidence as
	// written: quotes and backslashes are the file's own; control characters
	// of the evidence are left for the printer to escape
	// (forensic.EscapeControl), as JSON encoders do.
	Reason string
	// Evidence is the matched text (at most a line), or a metadata value.
	Evidence string
	// Layer and Hidden are copied from the File.
	Layer  int
	Hidden bool
}

// Skip is a file whose content was not read in full.
type Skip struct {
	Path   string
	Layer  int
	Reason string
}

// Report is the outcome of a scan.
type Report struct {
	Findings []Finding
	Skipped  []Skip
	// Files counts the entries examined, Read the bytes of content read.
	Files int
	Read  int64
}

// AtLeast reports whether a finding at or above min exists.
func (r *Report) AtLeast(min finding.Severity) bool {
	for _, f := range r.Findings {
		if f.Severity >= min {
			return true
		}
	}
	return false
}

// Scan runs the built-in rules (and opts.Matchers) over every file of in.
func Scan(ctx context.Context, in Input, opts Options) (*Report, error) {
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.FileTimeout <= 0 {
		opts.FileTimeout = DefaultFileTimeout
	}
	s := &scanner{opts: opts, rep: &Report{}, buf: make([]byte, 64<<10), packages: make(map[string]*packages.Result, len(opts.Packages))}
	for i := range opts.Packages {
		s.packages[opts.Packages[i].Path] = &opts.Packages[i]
	}
	err := in.Walk(ctx, func(f *File, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return s.file(ctx, f, r)
	})
	if err != nil {
		return nil, err
	}
	sortFindings(s.rep.Findings)
	return s.rep, nil
}

type scanner struct {
	opts     Options
	rep      *Report
	buf      []byte
	packages map[string]*packages.Result
}

func (s *scanner) file(ctx context.Context, f *File, r io.Reader) error {
	s.rep.Files++
	if !f.Hidden {
		f.Package = s.packages[f.Path]
	}
	c := &content{}
	if r != nil {
		if err := s.read(f, r, c); err != nil {
			s.skip(f, err.Error())
		}
	}
	finding.Run(builtins, examined{f, c}, func(r *finding.Rule, h finding.Hit) {
		s.rep.Findings = append(s.rep.Findings, Finding{Rule: r.ID, Severity: h.Severity, Title: r.Title,
			Path: f.Path, Reason: h.Reason, Evidence: h.Evidence, Layer: f.Layer, Hidden: f.Hidden})
	})
	if !c.full {
		return nil
	}
	for _, m := range s.opts.Matchers {
		fs, err := m.Match(ctx, f, c.data)
		if err != nil {
			s.skip(f, err.Error())
			continue
		}
		for _, x := range fs {
			x.Path, x.Layer, x.Hidden = f.Path, f.Layer, f.Hidden
			s.rep.Findings = append(s.rep.Findings, x)
		}
	}
	return nil
}

func (s *scanner) skip(f *File, why string) {
	s.rep.Skipped = append(s.rep.Skipped, Skip{Path: f.Path, Layer: f.Layer, Reason: why})
}

// errTooSlow and the size error are the reasons a file is skipped.
var errTooSlow = errors.New("reading took longer than the per-file time limit")

// read fills c with the content of the file: the head only of a binary file
// when no matcher needs more, else up to the size limit.
func (s *scanner) read(f *File, r io.Reader, c *content) error {
	start := time.Now()
	var b bytes.Buffer
	b.Grow(int(min(max(f.Size, 0), s.opts.MaxFileBytes)) + 1)
	limit, checked := s.opts.MaxFileBytes, false
	for {
		if time.Since(start) > s.opts.FileTimeout {
			c.set(b.Bytes(), false)
			return errTooSlow
		}
		n, err := r.Read(s.buf)
		s.rep.Read += int64(n)
		b.Write(s.buf[:n])
		if err == io.EOF {
			c.set(b.Bytes(), true)
			return nil
		}
		if err != nil {
			c.set(b.Bytes(), false)
			return fmt.Errorf("read: %w", err)
		}
		if !checked && b.Len() >= headBytes {
			// Binary content matters to the built-in rules by its magic
			// only; it is read on for the matchers.
			checked = true
			if len(s.opts.Matchers) == 0 && bytes.IndexByte(b.Bytes()[:headBytes], 0) >= 0 {
				c.set(b.Bytes(), false)
				return nil
			}
		}
		if int64(b.Len()) > limit {
			c.set(b.Bytes()[:limit], false)
			return fmt.Errorf("larger than the per-file limit of %d bytes: only its first bytes were examined", limit)
		}
	}
}

// content is what was read of a file.
type content struct {
	data []byte
	// full says data is the whole file (false for a binary file of which
	// only the head was needed, and for a skipped file).
	full bool
}

func (c *content) set(b []byte, full bool) {
	c.data, c.full = b, full
}

func (c *content) head() []byte {
	if len(c.data) > headBytes {
		return c.data[:headBytes]
	}
	return c.data
}

// elf reports whether the content starts with the ELF magic.
func (c *content) elf() bool { return bytes.HasPrefix(c.data, []byte("\x7fELF")) }

// shebang returns the interpreter line of a script, or "".
func (c *content) shebang() string {
	if !bytes.HasPrefix(c.data, []byte("#!")) {
		return ""
	}
	line, _, _ := bytes.Cut(c.head(), []byte("\n"))
	return string(bytes.TrimSpace(line))
}

// text reports whether the head holds no NUL byte.
func (c *content) text() bool {
	return len(c.data) > 0 && bytes.IndexByte(c.head(), 0) < 0
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Layer != b.Layer {
			return a.Layer < b.Layer
		}
		return a.Rule < b.Rule
	})
}
