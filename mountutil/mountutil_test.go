package mountutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

func TestReadOnly(t *testing.T) {
	tests := []struct {
		name    string
		in      mount.Mount
		want    []mount.Mount
		wantErr string
	}{
		{
			name: "container overlay puts the upper on top",
			in: mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
				"index=off", "workdir=/s/3/work", "upperdir=/s/3/fs", "lowerdir=/s/2/fs:/s/1/fs"}},
			want: []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
				"ro", "nodev", "nosuid", "noexec", "index=off", "lowerdir=/s/3/fs:/s/2/fs:/s/1/fs"}}},
		},
		{
			name: "userxattr is kept",
			in: mount.Mount{Type: "overlay", Options: []string{
				"userxattr", "upperdir=/u", "workdir=/w", "lowerdir=/l"}},
			want: []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
				"ro", "nodev", "nosuid", "noexec", "index=off", "lowerdir=/u:/l", "userxattr"}}},
		},
		{
			name: "bind becomes a read-only bind",
			in:   mount.Mount{Type: "bind", Source: "/s/1/fs", Options: []string{"rw", "rbind"}},
			want: []mount.Mount{{Type: "bind", Source: "/s/1/fs", Options: []string{"ro", "rbind", "nodev", "nosuid", "noexec"}}},
		},
		{
			name: "options that shape the merge are kept",
			in: mount.Mount{Type: "overlay", Options: []string{"metacopy=on", "redirect_dir=on", "xino=auto",
				"nfs_export=on", "volatile", "upperdir=/u", "workdir=/w", "lowerdir=/a:/b"}},
			want: []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
				"ro", "nodev", "nosuid", "noexec", "index=off", "lowerdir=/u:/a:/b", "metacopy=on", "redirect_dir=follow", "xino=auto"}}},
		},
		{
			name:    "other types are refused",
			in:      mount.Mount{Type: "btrfs", Source: "/dev/sda"},
			wantErr: `cannot mount a "btrfs" snapshot read-only`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadOnly([]mount.Mount{tt.in})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			for _, m := range got {
				if Writable(m) {
					t.Fatalf("%+v is writable", m)
				}
			}
		})
	}
}

func TestFastPathError(t *testing.T) {
	tests := []struct {
		opts []string
		want string
	}{
		{[]string{"index=off", "upperdir=/u", "workdir=/w", "lowerdir=/l"}, ""},
		{[]string{"userxattr", "upperdir=/u", "workdir=/w", "lowerdir=/l", "xino=on"}, ""},
		{[]string{"metacopy=off", "redirect_dir=off", "upperdir=/u", "lowerdir=/l"}, ""},
		{[]string{"metacopy=on", "upperdir=/u", "lowerdir=/l"}, "metacopy=on"},
		{[]string{"redirect_dir=on", "upperdir=/u", "lowerdir=/l"}, "redirect_dir=follow"},
		{[]string{"datadir+=/d", "upperdir=/u", "lowerdir=/l"}, "datadir+=/d"},
	}
	for _, tt := range tests {
		o, err := ParseOverlay(mount.Mount{Type: "overlay", Options: tt.opts})
		if err != nil {
			t.Fatal(err)
		}
		err = o.FastPathError()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.opts, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: error %v, want one naming %s", tt.opts, err, tt.want)
		}
	}
}

func TestSplitLowerdirEscapes(t *testing.T) {
	got := splitLowerdir(`/a\:b:/c\\d:/e`)
	want := []string{"/a:b", `/c\d`, "/e"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	if back := escapeOverlayPath("/a:b,c"); back != `/a\:b\,c` {
		t.Fatalf("escape: %q", back)
	}
}

// TestWithTempMountManyLayers mounts 120 layers whose lowerdir option is far
// longer than a page, checks the tree is read-only and merged in order, and
// that nothing stays mounted, also when the callback fails.
func TestWithTempMountManyLayers(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	var layers []string
	for i := 0; i < 120; i++ {
		l := filepath.Join(base, fmt.Sprintf("a-long-layer-directory-name-to-exceed-one-page-%03d", i))
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, "f"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	mounts := ReadOnlyMounts(layers)
	if n := len(strings.Join(mounts[0].Options, ",")); n <= 4096 {
		t.Fatalf("options only %d bytes long", n)
	}
	var root string
	errStop := errors.New("stop")
	err := WithTempMount(context.Background(), mounts, func(dir string) error {
		root = dir
		b, err := os.ReadFile(filepath.Join(dir, "f"))
		if err != nil || string(b) != "0" {
			t.Errorf("merged f = %q, %v; want the topmost layer's", b, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); err == nil {
			t.Error("write into the read-only mount succeeded")
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("error %v, want the callback's", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("temporary mount point %s left behind: %v", root, err)
	}
	left, err := MountsUnder(root)
	if err != nil || len(left) != 0 {
		t.Fatalf("mounts left under %s: %v %v", root, left, err)
	}
}
