package packages

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	rpmdb "github.com/anchore/go-rpmdb/pkg"
	_ "github.com/glebarez/go-sqlite" // the "sqlite" database/sql driver go-rpmdb opens
)

// rpm reads the rpm databases found (Berkeley DB Packages, ndb Packages.db,
// sqlite rpmdb.sqlite). go-rpmdb opens a path, so each database is copied to a
// private temporary directory first; the copy is removed before returning.
func (s *Scanner) rpm(ctx context.Context, d Distro) ([]Package, error) {
	var names []string
	for name := range s.files {
		if classify(File{Path: name, Mode: 0o644}) == kindRPM && !strings.HasSuffix(name, "-wal") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []Package
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pkgs, err := s.rpmDB(name, d)
		if err != nil {
			s.notef("%s: %v", esc(name), err)
			continue
		}
		out = append(out, pkgs...)
	}
	return out, nil
}

func (s *Scanner) rpmDB(name string, d Distro) (pkgs []Package, err error) {
	dir, err := os.MkdirTemp(s.opts.TempDir, "ctrforensics-rpmdb-")
	if err != nil {
		return nil, fmt.Errorf("copy the rpm database: %w", err)
	}
	defer os.RemoveAll(dir)
	copyPath := path.Join(dir, path.Base(name))
	if err := os.WriteFile(copyPath, s.files[name], 0o600); err != nil {
		return nil, fmt.Errorf("copy the rpm database: %w", err)
	}
	if wal, ok := s.files[name+"-wal"]; ok {
		if err := checkpoint(copyPath, wal); err != nil {
			return nil, err
		}
	}
	db, err := openRPM(copyPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	list, err := db.ListPackages()
	if err != nil {
		return nil, fmt.Errorf("read the rpm database: %w", err)
	}
	for _, r := range list {
		p := rpmPackage(r, name, d)
		pkgs = append(pkgs, p)
		s.rpmOwners(r, p)
	}
	return pkgs, nil
}

// openRPM opens a database with go-rpmdb, turning its panics on corrupt input
// into errors.
func openRPM(p string) (db *rpmdb.RpmDB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt rpm database: %v", r)
		}
	}()
	db, err = rpmdb.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open the rpm database: %w", err)
	}
	return db, nil
}

func rpmPackage(r *rpmdb.PackageInfo, source string, d Distro) Package {
	version := r.Version
	if r.Release != "" {
		version += "-" + r.Release
	}
	p := Package{Name: r.Name, Version: version, Type: RPM, Arch: r.Arch, Source: source}
	if r.License != "" {
		p.Licenses = []string{r.License}
	}
	epoch := ""
	if r.Epoch != nil && *r.Epoch != 0 {
		epoch = strconv.Itoa(*r.Epoch)
	}
	p.PURL = purlOf(RPM, distroNamespace(d, "rpm"), r.Name, version,
		qualifiers("arch", r.Arch, "epoch", epoch, "distro", distroQualifier(d)))
	if files, err := r.InstalledFileNames(); err == nil {
		p.Files = files
	}
	return p
}

// checkpoint moves the transactions of a write-ahead log into the copy of an
// sqlite rpm database: go-rpmdb opens databases immutable, which ignores the
// log, and rpm leaves its last installs there.
func checkpoint(db string, wal []byte) error {
	if err := os.WriteFile(db+"-wal", wal, 0o600); err != nil {
		return fmt.Errorf("copy the rpm database's log: %w", err)
	}
	h, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		return fmt.Errorf("open the copy of the rpm database: %w", err)
	}
	defer h.Close()
	if _, err := h.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("apply the rpm database's log: %w", err)
	}
	return nil
}

// rpmOwners records the digests of a package's regular files, skipping
// %ghost files (never installed) and marking %config ones.
func (s *Scanner) rpmOwners(r *rpmdb.PackageInfo, p Package) {
	files, err := r.InstalledFiles()
	if err != nil {
		return
	}
	alg := map[rpmdb.DigestAlgorithm]string{0: "md5", rpmdb.PGPHASHALGO_MD5: "md5", rpmdb.PGPHASHALGO_SHA1: "sha1",
		rpmdb.PGPHASHALGO_SHA256: "sha256"}[r.DigestAlgorithm]
	if s.rpmOwned == nil {
		s.rpmOwned = Owners{}
	}
	for _, f := range files {
		if f.Mode&0o170000 != 0o100000 || int32(f.Flags)&rpmdb.RPMFILE_GHOST != 0 || f.Digest == "" || alg == "" {
			continue
		}
		s.rpmOwned[f.Path] = Owned{Package: p.Name, Version: p.Version, Type: RPM, Algorithm: alg, Digest: f.Digest,
			Config: int32(f.Flags)&rpmdb.RPMFILE_CONFIG != 0}
	}
}
