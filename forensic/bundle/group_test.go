package bundle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestBagGroup seals a bag of a cluster run: bag-info.txt names the group on
// one line (a line break in it cannot forge a field), the acquisition record
// keeps the group and the orchestration as given, and the bag verifies.
func TestBagGroup(t *testing.T) {
	tests := []struct{ group, line string }{
		{"20261129t083000z-3f9a6c", "Bag-Group-Identifier: 20261129t083000z-3f9a6c"},
		{"g\nExternal-Identifier: forged", `Bag-Group-Identifier: g\nExternal-Identifier: forged`},
	}
	for _, tt := range tests {
		out := filepath.Join(t.TempDir(), "bag")
		w, err := Create(out, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		orch := &Orchestration{System: OrchestrationKubernetes, Group: tt.group, Context: "prod", User: "alice",
			Nodes: []string{"node-a"}, CollectorPods: []string{"ctrforensics-x-0"}, Targets: 1,
			Target:    OrchestratedTarget{Namespace: "shop", Pod: "web-1", Container: "php", ContainerID: "abc", Node: "node-a"},
			Collector: CollectorPod{Namespace: "ctrforensics", Name: "ctrforensics-x-0", UID: "uid-1", Node: "node-a"}}
		acq := NewAcquisition(time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC))
		acq.Examiner, acq.BagGroup, acq.Orchestration = "alice", tt.group, orch
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
		if !strings.Contains(string(info), "\n"+tt.line+"\n") || strings.Contains(string(info), "\nExternal-Identifier") {
			t.Errorf("bag-info.txt:\n%s\nwant the line %q and no forged field", info, tt.line)
		}
		b, err := os.ReadFile(filepath.Join(out, AcquisitionFile))
		if err != nil {
			t.Fatal(err)
		}
		var got Acquisition
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.BagGroup != tt.group || !reflect.DeepEqual(got.Orchestration, orch) {
			t.Errorf("acquisition group %q orchestration %+v", got.BagGroup, got.Orchestration)
		}
		rep, err := Verify(context.Background(), out, VerifyOptions{})
		if err != nil || !rep.Valid() {
			t.Errorf("verify: %v %+v", err, rep)
		}
	}
}
