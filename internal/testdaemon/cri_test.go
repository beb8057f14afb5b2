package testdaemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/ctrforensics/ctrforensics/internal/testcri"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// TestCRIPod runs a pod with two containers through the CRI API, execs in
// one, and checks that Stop leaves no container, shim, mount, runc state or
// cgroup behind.
func TestCRIPod(t *testing.T) {
	ctx, d, c := startDaemon(t, Options{CRI: true})
	cri, err := d.CRIClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cri.Close()

	web, err := testimage.WebImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ImportImage(namespaces.WithNamespace(ctx, CRINamespace), c, web, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	if err := cri.WaitImage(ctx, web.Name); err != nil {
		t.Fatal(err)
	}
	pod, err := cri.RunPod(ctx, testcri.PodSpec{Namespace: "shop", Name: "web-1", UID: "uid-1", Labels: map[string]string{"app": "web"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, d.LogTail(30))
	}
	var ids []string
	for _, name := range []string{"php", "sidecar"} {
		id, err := cri.RunContainer(ctx, pod, testcri.ContainerSpec{Name: name, Image: web.Name, Command: []string{"sleep", "1000"}})
		if err != nil {
			t.Fatalf("%v\n%s", err, d.LogTail(30))
		}
		ids = append(ids, id)
	}
	out, err := cri.ExecSync(ctx, ids[0], "sh", "-c", "echo x >> /etc/passwd; id -u")
	if err != nil || out != "0\n" {
		t.Fatalf("exec: %q %v", out, err)
	}
	shims, err := d.ShimPIDs()
	if err != nil || len(shims) == 0 {
		t.Fatalf("no shim: %v", err)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkStopped(t, d, shims)
	for _, id := range append([]string{pod.ID}, ids...) {
		if _, err := os.Stat(filepath.Join("/run/containerd/runc", CRINamespace, id)); err == nil {
			t.Errorf("runc state of %s left", id)
		}
	}
}
