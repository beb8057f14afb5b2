package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/imagefs"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func imageFilesCommand() *cli.Command {
	return &cli.Command{
		Name:      "files",
		Usage:     "every path of the image's final filesystem (what docker export of a never-started container holds)",
		ArgsUsage: "IMAGE",
		Flags: imageFlags(indexFlags(formatFlag(),
			&cli.BoolFlag{Name: "digest", Usage: "add the sha256 of every regular file"},
			&cli.StringFlag{Name: "type", Usage: "only this type: file, dir, symlink, fifo, socket, char, block"},
			&cli.StringFlag{Name: "path", Usage: "only paths matching this glob on the whole path: * and ? within a name, ** across directories, [a-z], {a,b} (e.g. '/usr/bin/*', '/**/.*', '/etc/**/*.conf')"},
			&cli.BoolFlag{Name: "setuid", Usage: "only setuid or setgid files"},
			&cli.StringFlag{Name: "newer", Usage: "only paths modified after this time (RFC 3339, or YYYY-MM-DD)"},
		)...),
		Action: runImageFiles,
	}
}

func runImageFiles(ctx context.Context, c *cli.Command) error {
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	keep, err := fileFilter(c)
	if err != nil {
		return err
	}
	indexGC()
	return withImage(ctx, c, []string{"IMAGE"}, func(ctx context.Context, cl *snapshot.Client, img *snapshot.ResolvedImage, _ []string) error {
		opts, err := layerOptions(c, cl, img)
		if err != nil {
			return err
		}
		opts.Digest = c.Bool("digest")
		// One write per block, not per cell or line: a million paths would
		// otherwise be millions of system calls.
		out := bufio.NewWriterSize(c.Root().Writer, 256<<10)
		err = listFiles(ctx, img, opts, format, keep, c.Bool("digest"), out)
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
		return err
	})
}

// listFiles writes the image's files that keep accepts to w.
func listFiles(ctx context.Context, img *snapshot.ResolvedImage, opts imagefs.Options, format output.Format, keep func(imagefs.Entry) bool, withDigest bool, w io.Writer) error {
	if format == output.JSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return imagefs.Walk(ctx, img.Layers, opts, func(e *imagefs.Entry) error {
			if !keep(*e) {
				return nil
			}
			return enc.Encode(toEntryRow(*e))
		})
	}
	headers := []string{"MODE", "UID", "GID", "SIZE", "MTIME", "LAYER", "PATH"}
	if withDigest {
		headers = append(headers, "SHA256")
	}
	// Streamed: the table is aligned per block of rows, so that a listing of
	// millions of paths is never held in memory.
	t, rows := output.NewTable(w, headers...), 0
	err := imagefs.Walk(ctx, img.Layers, opts, func(e *imagefs.Entry) error {
		if !keep(*e) {
			return nil
		}
		t.Row(fileRow(*e, withDigest)...)
		if rows++; rows%4096 == 0 {
			return t.Flush()
		}
		return nil
	})
	if ferr := t.Flush(); err == nil {
		err = ferr
	}
	return err
}

func fileRow(e imagefs.Entry, withDigest bool) []string {
	name := forensic.EscapePath(e.Path)
	if e.Type == forensic.TypeSymlink {
		name += " -> " + forensic.EscapePath(e.LinkTarget)
	} else if e.HardLink {
		name += " link to " + forensic.EscapePath(e.LinkTarget)
	}
	row := []string{forensic.LsMode(e.Type, e.Mode), strconv.FormatUint(uint64(e.UID), 10), strconv.FormatUint(uint64(e.GID), 10),
		strconv.FormatInt(displaySize(e), 10), e.Mtime.UTC().Format(time.RFC3339), strconv.Itoa(e.Layer), name}
	if withDigest {
		row = append(row, orDash(short(e.Digest.String())))
	}
	return row
}

// warner prints the engine's warnings about hostile layer entries on stderr.
func warner(c *cli.Command) func(string) {
	return func(msg string) { fmt.Fprintln(c.Root().ErrWriter, "ctrforensics: warning: "+msg) }
}

func fileFilter(c *cli.Command) (func(imagefs.Entry) bool, error) {
	typ, glob, setuid := c.String("type"), c.String("path"), c.Bool("setuid")
	switch forensic.FileType(typ) {
	case "", forensic.TypeFile, forensic.TypeDir, forensic.TypeSymlink, forensic.TypeFIFO, forensic.TypeSocket, forensic.TypeChar, forensic.TypeBlock:
	default:
		return nil, fmt.Errorf("unknown --type %q (file, dir, symlink, fifo, socket, char or block)", typ)
	}
	if glob != "" {
		if !doublestar.ValidatePattern(glob) {
			return nil, fmt.Errorf("bad --path %q: not a valid glob (unbalanced [ ] or { }?)", glob)
		}
	}
	var newer time.Time
	if s := c.String("newer"); s != "" {
		var err error
		if newer, err = time.Parse(time.RFC3339, s); err != nil {
			if newer, err = time.Parse("2006-01-02", s); err != nil {
				return nil, fmt.Errorf("bad --newer %q: give RFC 3339 (2024-01-02T15:04:05Z) or a date (2024-01-02)", s)
			}
		}
	}
	return func(e imagefs.Entry) bool {
		if typ != "" && string(e.Type) != typ {
			return false
		}
		if glob != "" {
			if !doublestar.MatchUnvalidated(glob, e.Path) {
				return false
			}
		}
		if setuid && e.Mode&0o6000 == 0 {
			return false
		}
		return newer.IsZero() || e.Mtime.After(newer)
	}, nil
}

// displaySize is the size a filesystem reports: a symlink's is its target's length.
func displaySize(e imagefs.Entry) int64 {
	if e.Type == forensic.TypeSymlink {
		return int64(len(e.LinkTarget))
	}
	return e.Size
}

func entryRows(es []imagefs.Entry) []entryRow {
	rows := make([]entryRow, len(es))
	for i, e := range es {
		rows[i] = toEntryRow(e)
	}
	return rows
}

func toEntryRow(e imagefs.Entry) entryRow {
	return entryRow{Path: forensic.EscapePath(e.Path), Type: e.Type, Mode: fmt.Sprintf("%04o", e.Mode), UID: e.UID, GID: e.GID,
		Size: displaySize(e), Mtime: forensic.FormatTime(e.Mtime), LinkTarget: forensic.EscapePath(e.LinkTarget), HardLink: e.HardLink,
		Layer: e.Layer, Digest: e.Digest.String(), Xattrs: e.Xattrs}
}
