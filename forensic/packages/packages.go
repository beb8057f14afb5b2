package packages

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// Type is a package's ecosystem, spelled as its package URL type.
type Type string

// The package types found.
const (
	Deb    Type = "deb"
	Apk    Type = "apk"
	RPM    Type = "rpm"
	Golang Type = "golang"
	PyPI   Type = "pypi"
	NPM    Type = "npm"
	Maven  Type = "maven"
	Gem    Type = "gem"
)

// Origin says where a container's package came from.
type Origin string

// The origins of a container's package.
const (
	// FromImage is a package the container's image already held.
	FromImage Origin = "image"
	// FromContainer is a package installed (or changed) in the container.
	FromContainer Origin = "container"
)

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Type    Type   `json:"type"`
	// Arch is the architecture the manager records, if any.
	Arch string `json:"arch,omitempty"`
	// PURL is the package URL (github.com/package-url/purl-spec).
	PURL string `json:"purl"`
	// Licenses are the licences the package's own metadata records.
	Licenses []string `json:"licenses,omitempty"`
	// Files are the absolute paths the manager records as the package's.
	Files []string `json:"files,omitempty"`
	// Source is the absolute path of the record the package was read from.
	Source string `json:"source"`
	// Layer is the index of the image layer that wrote Source (images only).
	Layer *int `json:"layer,omitempty"`
	// Origin is set for a container's packages.
	Origin Origin `json:"origin,omitempty"`
}

// Distro is the operating system named by /etc/os-release.
type Distro struct {
	ID        string `json:"id,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	Name      string `json:"pretty_name,omitempty"`
}

// Inventory is what a scan found.
type Inventory struct {
	Distro   Distro    `json:"distro"`
	Packages []Package `json:"packages"`
	// Notes name every record that was skipped or could not be read.
	Notes []string `json:"notes,omitempty"`
}

// Options bounds and attributes a scan. Zero values take the defaults.
type Options struct {
	// MaxFileBytes bounds a database or metadata file (DefaultMaxFileBytes).
	MaxFileBytes int64
	// MaxBinaryBytes bounds an executable or archive examined
	// (DefaultMaxBinaryBytes).
	MaxBinaryBytes int64
	// LayerOf, when set, names the image layer that wrote an absolute path.
	LayerOf func(p string) (int, bool)
	// TempDir is where an rpm database is copied to be read (os.TempDir()).
	TempDir string
}

// The default bounds.
const (
	DefaultMaxFileBytes   int64 = 256 << 20
	DefaultMaxBinaryBytes int64 = 256 << 20
	// maxArchiveEntry bounds one entry read inside a Java archive.
	maxArchiveEntry int64 = 1 << 20
)

// File describes one entry offered to a Scanner.
type File struct {
	// Path is absolute and cleaned.
	Path string
	Mode fs.FileMode
	Size int64
}

// Scanner collects the records of a filesystem. Offer each entry with Wants
// and, when it is wanted, give its content to Add; then call Finish. A Scanner
// is not safe for concurrent use.
type Scanner struct {
	opts  Options
	files map[string][]byte // wanted database and metadata files
	found []Package         // packages found inline (binaries, archives)
	notes []string
	// recordsOnly limits a scan to the records integrity needs (no binaries,
	// archives or language manifests without file digests).
	recordsOnly bool
	// rpmOwned are the file records of the rpm databases read.
	rpmOwned Owners
}

// NewScanner returns a Scanner with opts.
func NewScanner(opts Options) *Scanner {
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxBinaryBytes <= 0 {
		opts.MaxBinaryBytes = DefaultMaxBinaryBytes
	}
	return &Scanner{opts: opts, files: map[string][]byte{}}
}

// Wants says whether the content of f is needed. Only regular files are ever
// wanted.
func (s *Scanner) Wants(f File) bool {
	if !f.Mode.IsRegular() {
		return false
	}
	switch classify(f) {
	case kindNone:
		return false
	case kindExec, kindJar, kindNpm, kindGem:
		return !s.recordsOnly
	}
	return true
}

// Add reads the content of a wanted file from r (at most its bound; a larger
// file is skipped with a note).
func (s *Scanner) Add(ctx context.Context, f File, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k := classify(f)
	if !s.Wants(f) {
		return nil
	}
	switch k {
	case kindNone:
		return nil
	case kindExec, kindJar:
		if f.Size > s.opts.MaxBinaryBytes {
			s.notef("%s: %d bytes, over the bound of %d for binaries and archives: not examined", esc(f.Path), f.Size, s.opts.MaxBinaryBytes)
			return nil
		}
		if k == kindExec {
			return s.addExec(f, r)
		}
		return s.addJar(f, r)
	}
	if f.Size > s.opts.MaxFileBytes {
		s.notef("%s: %d bytes, over the bound of %d for package records: not read", esc(f.Path), f.Size, s.opts.MaxFileBytes)
		return nil
	}
	b, err := readBounded(r, s.opts.MaxFileBytes)
	if err != nil {
		s.notef("%s: %v", esc(f.Path), err)
		return nil
	}
	s.files[f.Path] = b
	return nil
}

// Finish parses what was collected and returns the inventory, sorted by type,
// name, version and source.
func (s *Scanner) Finish(ctx context.Context) (*Inventory, error) {
	inv := &Inventory{Distro: parseOSRelease(s.files)}
	pkgs := append([]Package(nil), s.found...)
	pkgs = append(pkgs, s.dpkg(inv.Distro)...)
	pkgs = append(pkgs, s.apk(inv.Distro)...)
	rpms, err := s.rpm(ctx, inv.Distro)
	if err != nil {
		return nil, err
	}
	pkgs = append(pkgs, rpms...)
	pkgs = append(pkgs, s.python()...)
	pkgs = append(pkgs, s.npm()...)
	pkgs = append(pkgs, s.gems()...)
	for i := range pkgs {
		if s.opts.LayerOf != nil {
			if l, ok := s.opts.LayerOf(pkgs[i].Source); ok {
				pkgs[i].Layer = &l
			}
		}
	}
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.Source, b.Source))
	})
	inv.Packages = pkgs
	inv.Notes = s.notes
	return inv, nil
}

func (s *Scanner) notef(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// readBounded reads r to its end, failing past limit bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("longer than the bound of %d bytes: not read", limit)
	}
	return b, nil
}

func esc(p string) string { return forensic.EscapePath(p) }

// kind is what a path holds, for the scanner.
type kind int

const (
	kindNone kind = iota
	kindOSRelease
	kindDpkgStatus
	kindDpkgStatusD
	kindDpkgInfo
	kindApk
	kindRPM
	kindPyMeta
	kindPyRecord
	kindEggInfo
	kindNpm
	kindJar
	kindGem
	kindExec
)

// rpmDBs are the rpm database files, and the sqlite write-ahead log that
// holds the transactions not yet checkpointed into rpmdb.sqlite.
var rpmDBs = map[string]bool{"Packages": true, "Packages.db": true, "rpmdb.sqlite": true, "rpmdb.sqlite-wal": true}

func classify(f File) kind {
	p := f.Path
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case p == "/etc/os-release" || p == "/usr/lib/os-release":
		return kindOSRelease
	case p == "/var/lib/dpkg/status":
		return kindDpkgStatus
	case dir == "/var/lib/dpkg/status.d":
		return kindDpkgStatusD
	case dir == "/var/lib/dpkg/info" && (strings.HasSuffix(base, ".list") || strings.HasSuffix(base, ".md5sums") ||
		strings.HasSuffix(base, ".conffiles")), p == "/var/lib/dpkg/diversions":
		return kindDpkgInfo
	case p == "/lib/apk/db/installed":
		return kindApk
	case (dir == "/var/lib/rpm" || dir == "/usr/lib/sysimage/rpm") && rpmDBs[base]:
		return kindRPM
	case strings.HasSuffix(dir, ".dist-info") && (base == "METADATA" || base == "RECORD"):
		if base == "RECORD" {
			return kindPyRecord
		}
		return kindPyMeta
	case strings.HasSuffix(dir, ".egg-info") && (base == "PKG-INFO" || base == "installed-files.txt"),
		strings.HasSuffix(base, ".egg-info") && isPythonLib(dir):
		return kindEggInfo
	case base == "package.json" && isNpmPackageDir(dir):
		return kindNpm
	case strings.HasSuffix(base, ".jar") || strings.HasSuffix(base, ".war") || strings.HasSuffix(base, ".ear"):
		return kindJar
	case strings.HasSuffix(base, ".gemspec") && path.Base(dir) == "specifications":
		return kindGem
	case f.Mode&0o111 != 0 && f.Size >= 64:
		return kindExec
	}
	return kindNone
}

func isPythonLib(dir string) bool {
	b := path.Base(dir)
	return b == "site-packages" || b == "dist-packages"
}

// isNpmPackageDir says dir is node_modules/NAME or node_modules/@SCOPE/NAME.
func isNpmPackageDir(dir string) bool {
	parent, name := path.Split(dir)
	parent = strings.TrimSuffix(parent, "/")
	if name == "" || strings.HasPrefix(name, ".") {
		return false
	}
	if path.Base(parent) == "node_modules" {
		return true
	}
	return strings.HasPrefix(path.Base(parent), "@") && path.Base(path.Dir(parent)) == "node_modules"
}
