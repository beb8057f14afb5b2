package bundle

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic"
)

// TestPodInBagInfo seals a bag of a pod's container whose labels hold what a
// raw CRI client may put there (a line break; gRPC strings are UTF-8): bag-info.txt
// names the pod on one line per field, the acquisition record keeps the
// exact values, and the bag verifies.
func TestPodInBagInfo(t *testing.T) {
	pod := &forensic.Pod{Namespace: "shop", Name: "web-1", UID: "uid-1", Container: "php", SandboxID: "sb1",
		Labels: map[string]string{"app": "web", "evil": "a\nExternal-Identifier: forged"}}
	out := filepath.Join(t.TempDir(), "bag")
	w, err := Create(out, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	acq := NewAcquisition(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	acq.Examiner, acq.Pod = "alice", pod
	if _, err := w.Seal(acq, nil); err != nil {
		w.Abandon()
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile(filepath.Join(out, BagInfo))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(info), "\n") {
		if strings.HasPrefix(l, "Kubernetes-") {
			got = append(got, l)
		}
	}
	want := []string{
		"Kubernetes-Pod: shop/web-1",
		"Kubernetes-Pod-UID: uid-1",
		"Kubernetes-Container-Name: php",
		"Kubernetes-Pod-Sandbox-ID: sb1",
		`Kubernetes-Pod-Label: app=web`,
		`Kubernetes-Pod-Label: evil=a\nExternal-Identifier: forged`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bag-info pod fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(string(info), "\nExternal-Identifier") {
		t.Error("a label value forged a bag-info field")
	}
	rep, err := Verify(context.Background(), out, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid() {
		t.Fatalf("problems: %+v", rep.Problems)
	}
	if rep.Acquisition == nil || !reflect.DeepEqual(rep.Acquisition.Pod, pod) {
		t.Errorf("acquisition pod %+v, want %+v", rep.Acquisition.Pod, pod)
	}
}
