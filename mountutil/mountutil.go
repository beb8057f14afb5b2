// Package mountutil mounts containerd snapshots read-only. It turns the mounts a
// snapshotter returns for a container's active snapshot into mounts that expose
// the same tree without any writable layer, and makes sure every temporary mount
// is undone.
package mountutil

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
)

// TempMountPrefix starts the name of every temporary mount point, followed by
// the owning process's ID, so that `cleanup` can tell a dead run's mounts.
const TempMountPrefix = "ctrforensics-mount-"

// Overlay is the layer stack of an overlayfs mount.
type Overlay struct {
	// Upper is the writable layer; empty for a read-only overlay.
	Upper string
	// Lowers are the read-only layers, topmost first.
	Lowers []string
	// UserXattr says the layers keep overlay attributes in the user namespace.
	UserXattr bool
	// Keep are the options that shape how the layers merge and must be kept
	// when the stack is mounted read-only (metacopy, redirect_dir, xino...).
	Keep []string
	// Uninterpreted are options whose effect on the merged tree ctrforensics
	// does not model: reading the upper directory alone would mislead.
	Uninterpreted []string
}

// UninterpretedError reports overlay mount options whose effect on the merged
// tree the overlay fast path does not model.
type UninterpretedError struct {
	Options []string
}

func (e *UninterpretedError) Error() string {
	return "overlay mount options the fast path does not interpret: " + strings.Join(e.Options, ",")
}

// ParseOverlay returns the layers and options of an overlayfs mount.
func ParseOverlay(m mount.Mount) (*Overlay, error) {
	if m.Type != "overlay" {
		return nil, fmt.Errorf("mount type %q is not overlay", m.Type)
	}
	o := &Overlay{}
	for _, opt := range m.Options {
		key, value, _ := strings.Cut(opt, "=")
		switch key {
		case "upperdir":
			o.Upper = unescapeOverlayPath(value)
		case "lowerdir":
			o.Lowers = splitLowerdir(value)
		case "userxattr":
			o.UserXattr = true
		case "workdir", "index", "volatile", "fsync", "nfs_export":
			// Only meaningful with an upper directory.
		case "rw", "ro", "nodev", "nosuid", "noexec", "relatime", "noatime":
			// Mount attributes, not overlay parameters: ReadOnlyMounts sets its own.
		case "xino", "uuid":
			o.Keep = append(o.Keep, opt)
		case "metacopy", "redirect_dir":
			if value == "off" {
				continue
			}
			if value == "on" && key == "redirect_dir" {
				opt = "redirect_dir=follow" // "on" creates redirects: there is no upper to create them in
			}
			o.Keep = append(o.Keep, opt)
			o.Uninterpreted = append(o.Uninterpreted, opt)
		default:
			o.Keep = append(o.Keep, opt)
			o.Uninterpreted = append(o.Uninterpreted, opt)
		}
	}
	if len(o.Lowers) == 0 {
		return nil, errors.New("overlay mount without lowerdir")
	}
	return o, nil
}

// FastPathError returns an *UninterpretedError when the upper directory alone
// cannot be trusted to list the changes: options that redirect or split files
// across layers, or that ctrforensics does not know.
func (o *Overlay) FastPathError() error {
	if len(o.Uninterpreted) > 0 {
		return &UninterpretedError{Options: o.Uninterpreted}
	}
	return nil
}

// splitLowerdir splits a lowerdir value on unescaped colons.
func splitLowerdir(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case v[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

func unescapeOverlayPath(v string) string {
	parts := splitLowerdir(v)
	return strings.Join(parts, ":")
}

func escapeOverlayPath(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	return r.Replace(p)
}

// ReadOnlyMounts returns mounts of the tree stacked from layers (topmost first),
// read-only: nothing for no layer, a read-only bind mount of a single layer,
// otherwise a read-only overlay with index=off, no upper or work directory, and
// the given overlay options. Every mount is also nodev, nosuid and noexec: a
// device node or setuid binary of the evidence must do nothing when browsed.
func ReadOnlyMounts(layers []string, overlayOpts ...string) []mount.Mount {
	switch len(layers) {
	case 0:
		return nil
	case 1:
		return []mount.Mount{{Type: "bind", Source: layers[0], Options: []string{"ro", "rbind", "nodev", "nosuid", "noexec"}}}
	}
	escaped := make([]string, len(layers))
	for i, l := range layers {
		escaped[i] = escapeOverlayPath(l)
	}
	opts := append([]string{"ro", "nodev", "nosuid", "noexec", "index=off", "lowerdir=" + strings.Join(escaped, ":")}, overlayOpts...)
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// LowerMounts returns read-only mounts of the overlay's lower layers: the
// image below a container.
func (o *Overlay) LowerMounts() []mount.Mount {
	return ReadOnlyMounts(o.Lowers, o.options()...)
}

// options are the overlay options a read-only mount of the stack needs.
func (o *Overlay) options() []string {
	opts := append([]string(nil), o.Keep...)
	if o.UserXattr {
		opts = append(opts, "userxattr")
	}
	return opts
}

// ReadOnly returns mounts that expose the same tree as mounts without any way
// to write to it. An overlay keeps its layers with the upper directory put on
// top of the lower ones, and the options that shape the merge; a bind mount
// becomes a read-only bind mount. Any other mount type is refused rather than
// mounted in a way that might write.
func ReadOnly(mounts []mount.Mount) ([]mount.Mount, error) {
	if len(mounts) != 1 {
		return nil, fmt.Errorf("expected one mount, got %d", len(mounts))
	}
	m := mounts[0]
	switch m.Type {
	case "overlay":
		o, err := ParseOverlay(m)
		if err != nil {
			return nil, err
		}
		layers := o.Lowers
		if o.Upper != "" {
			layers = append([]string{o.Upper}, o.Lowers...)
		}
		return ReadOnlyMounts(layers, o.options()...), nil
	case "bind", "rbind":
		return ReadOnlyMounts([]string{m.Source}), nil
	}
	return nil, fmt.Errorf("cannot mount a %q snapshot read-only: only overlay and bind mounts are supported", m.Type)
}

// Writable reports whether a mount of m could write to its layers: a bind
// mount without "ro", or an overlay with an upper directory.
func Writable(m mount.Mount) bool {
	if m.Type == "overlay" {
		for _, o := range m.Options {
			if strings.HasPrefix(o, "upperdir=") {
				return true
			}
		}
		return false
	}
	for _, o := range m.Options {
		if o == "ro" {
			return false
		}
	}
	return true
}
