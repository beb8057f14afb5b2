// Command demoimage writes a demo image as an OCI image layout tar on standard
// output, for `make demo`: the web image (busybox httpd serving a small site),
// or with -image suspect the suspect image of the image examination demo.
//
//	go run ./internal/demoimage > web.tar && ctr images import web.tar
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"

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
	build := map[string]func(context.Context) (*testimage.Image, error){"web": testimage.WebImage, "suspect": testimage.SuspectImage}[which]
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
