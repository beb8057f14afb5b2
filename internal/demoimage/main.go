// Command demoimage writes the demo web image (busybox httpd serving a small
// site) as an OCI image layout tar on standard output, for `make demo`:
//
//	go run ./internal/demoimage > web.tar && ctr images import web.tar
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "demoimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	img, err := testimage.WebImage(ctx)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	if err := img.WriteOCIArchive(w); err != nil {
		return err
	}
	return w.Flush()
}
