// Package packages finds the OS and language packages installed in a
// filesystem: dpkg (status, distroless status.d), apk, rpm (bdb, ndb and
// sqlite databases), Go binaries, Python dist-info and egg-info, npm
// package.json files under node_modules, Java archives and Ruby gemspecs.
// It writes inventories as JSON, CycloneDX 1.6 and SPDX 2.3.
//
// It does not import containerd: a Scanner is fed files one at a time (from
// a directory through ScanDir, an fs.FS through ScanFS, or a tar stream of an
// image's final filesystem through ScanTar), so it works on plain directories
// in tests.
//
// Invariants: the input is hostile. Nothing of the target is run; symbolic
// links are never followed (a database that is a symlink is not read); every
// read is bounded (Options.MaxFileBytes for databases and metadata,
// Options.MaxBinaryBytes for executables and archives, and a per-entry bound
// inside archives, so a 10 GB status file or a zip bomb costs no memory);
// whatever is skipped is said in Inventory.Notes, never silently.
package packages
