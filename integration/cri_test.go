package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/internal/testcri"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testimage"
)

// criHarness is a containerd with the CRI plugin and the pods of TestCRI:
// one daemon for the whole test, which starts slower than the package's.
type criHarness struct {
	daemon *testdaemon.Daemon
	cri    *testcri.Client
	// ids maps "pod/container" (and "pod/(sandbox)") to container IDs.
	ids map[string]string
}

// cli runs ctrforensics against the CRI daemon's k8s.io namespace.
func (ch *criHarness) cli(t *testing.T, args ...string) result {
	t.Helper()
	return h.cliWith(t, nil, append([]string{"--address", ch.daemon.Address, "-n", testdaemon.CRINamespace}, args...)...)
}

func (ch *criHarness) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	r := ch.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("ctrforensics %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// startCRI starts the CRI daemon and, through the CRI API as kubelet would,
// two pods on the node's network:
//
//	shop/web-1          labels app=web, tier=front; containers php and sidecar;
//	                    no kubelet labels: only the CRI plugin's records name the pod
//	kube-system/kube-proxy-x  labels app=kube-proxy; container kube-proxy; kubelet's labels
func startCRI(t *testing.T) *criHarness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := testdaemon.StartWith(ctx, "", testdaemon.Options{CRI: true})
	if err != nil {
		t.Fatal(err)
	}
	ch := &criHarness{daemon: d, ids: map[string]string{}}
	t.Cleanup(func() {
		if ch.cri != nil {
			ch.cri.Close()
		}
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("stop CRI containerd: %v", err)
		}
	})
	if ch.cri, err = d.CRIClient(); err != nil {
		t.Fatal(err)
	}
	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	web, err := testimage.WebImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testdaemon.ImportImage(namespaces.WithNamespace(ctx, testdaemon.CRINamespace), c, web, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	if err := ch.cri.WaitImage(ctx, web.Name); err != nil {
		t.Fatal(err)
	}
	pods := []struct {
		spec       testcri.PodSpec
		containers []string
	}{
		{testcri.PodSpec{Namespace: "shop", Name: "web-1", UID: "0b5c4a5e-web-1", Labels: map[string]string{"app": "web", "tier": "front"}},
			[]string{"php", "sidecar"}},
		{testcri.PodSpec{Namespace: "kube-system", Name: "kube-proxy-x", UID: "9d1e-proxy", Labels: map[string]string{"app": "kube-proxy"}, KubeletLabels: true},
			[]string{"kube-proxy"}},
	}
	for _, p := range pods {
		pod, err := ch.cri.RunPod(ctx, p.spec)
		if err != nil {
			t.Fatalf("%v\n%s", err, d.LogTail(20))
		}
		ch.ids[p.spec.Name+"/(sandbox)"] = pod.ID
		for _, name := range p.containers {
			id, err := ch.cri.RunContainer(ctx, pod, testcri.ContainerSpec{Name: name, Image: web.Name, Command: []string{"sleep", "100000"}})
			if err != nil {
				t.Fatalf("%v\n%s", err, d.LogTail(20))
			}
			ch.ids[p.spec.Name+"/"+name] = id
		}
	}
	return ch
}

// TestCRI examines pods created through the real CRI API: ls columns and
// filters, diff and collect of a pod's container after an attack. It runs
// against containerd 1.6 and 2.x (make test-containerd2), which record pods
// differently (2.x adds the container's SandboxID).
func TestCRI(t *testing.T) {
	var dir string
	t.Cleanup(func() { // runs after the daemon's Stop
		if left := mountsUnder(t, dir); dir != "" && left > 0 {
			t.Errorf("%d mounts left under %s after stopping the CRI daemon", left, dir)
		}
	})
	ch := startCRI(t)
	dir = ch.daemon.Dir
	t.Run("ls", func(t *testing.T) { testCRILs(t, ch) })
	t.Run("ls filters", func(t *testing.T) { testCRIFilters(t, ch) })
	t.Run("ls json", func(t *testing.T) { testCRIJSON(t, ch) })
	t.Run("diff and collect", func(t *testing.T) { testCRIDiffCollect(t, ch) })
}

// mountsUnder counts the host's mounts that name dir (as mount point or in
// their options): other tests' daemons run in parallel, so the host's total
// says nothing.
func mountsUnder(t *testing.T, dir string) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), dir+"/")
}

// lsRows runs ls with args and returns its rows, keyed by the row's
// "POD/NAME", and the header.
func (ch *criHarness) lsRows(t *testing.T, args ...string) (header string, rows map[string][]string) {
	t.Helper()
	out := ch.mustCLI(t, append([]string{"ls", "--no-trunc"}, args...)...)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	columns := regexp.MustCompile(`\s{3,}`)
	rows = map[string][]string{}
	for _, l := range lines[1:] {
		f := columns.Split(strings.TrimSpace(l), -1)
		if len(f) != 9 {
			t.Fatalf("row %q has %d columns", l, len(f))
		}
		rows[f[7]+"/"+f[8]] = f
	}
	return strings.Join(strings.Fields(lines[0]), " "), rows
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func testCRILs(t *testing.T, ch *criHarness) {
	header, rows := ch.lsRows(t)
	if header != "CONTAINER IMAGE STATUS SNAPSHOTTER RO-ROOTFS CREATED POD-NAMESPACE POD NAME" {
		t.Errorf("header %q", header)
	}
	if got, want := keys(rows), []string{"kube-proxy-x/kube-proxy", "web-1/php", "web-1/sidecar"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ls rows %v, want %v (sandboxes hidden)", got, want)
	}
	php := rows["web-1/php"]
	if php[0] != ch.ids["web-1/php"] || php[1] != testimage.WebImageName || php[2] != "running" || php[6] != "shop" {
		t.Errorf("php row %q", php)
	}
	if r := rows["kube-proxy-x/kube-proxy"]; r[6] != "kube-system" {
		t.Errorf("kube-proxy row %q", r)
	}

	_, all := ch.lsRows(t, "--all")
	want := []string{"kube-proxy-x/(sandbox)", "kube-proxy-x/kube-proxy", "web-1/(sandbox)", "web-1/php", "web-1/sidecar"}
	if got := keys(all); !reflect.DeepEqual(got, want) {
		t.Fatalf("ls --all rows %v, want %v", got, want)
	}
	if sb := all["web-1/(sandbox)"]; sb[0] != ch.ids["web-1/(sandbox)"] || sb[1] != testimage.PauseImageName || sb[6] != "shop" || sb[2] != "running" {
		t.Errorf("sandbox row %q", sb)
	}
}

func testCRIFilters(t *testing.T, ch *criHarness) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--pod", "web-1"}, []string{"web-1/php", "web-1/sidecar"}},
		{[]string{"--pod", "web-1", "--all"}, []string{"web-1/(sandbox)", "web-1/php", "web-1/sidecar"}},
		{[]string{"--pod", "web"}, nil},
		{[]string{"--pod-namespace", "kube-system"}, []string{"kube-proxy-x/kube-proxy"}},
		{[]string{"--pod-namespace", "shop", "--pod", "kube-proxy-x"}, nil},
		{[]string{"--label", "app=web"}, []string{"web-1/php", "web-1/sidecar"}},
		{[]string{"--label", "app=web", "--label", "tier=front"}, []string{"web-1/php", "web-1/sidecar"}},
		{[]string{"--label", "app=web", "--label", "tier=back"}, nil},
		{[]string{"--label", "io.kubernetes.container.name=kube-proxy"}, []string{"kube-proxy-x/kube-proxy"}},
		{[]string{"--exclude-system"}, []string{"web-1/php", "web-1/sidecar"}},
		{[]string{"--exclude-system", "--all"}, []string{"web-1/(sandbox)", "web-1/php", "web-1/sidecar"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, rows := ch.lsRows(t, tt.args...)
			if got := keys(rows); len(got)+len(tt.want) > 0 && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rows %v, want %v", got, tt.want)
			}
		})
	}
	// Outside k8s.io, an empty pod listing says where pods are.
	if r := h.cli(t, "ls", "--pod", "web-1"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, "(-n k8s.io)") {
		t.Errorf("ls --pod in namespace %s: exit %d, stdout %q, stderr %q", h.daemon.Namespace, r.code, r.stdout, r.stderr)
	}
	r := ch.cli(t, "ls", "--label", "app")
	if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "KEY=VALUE") {
		t.Errorf("ls --label app: exit %d, stderr %q", r.code, r.stderr)
	}
}

// criContainerJSON is the part of an ls --format json line TestCRI checks.
type criContainerJSON struct {
	ID            string            `json:"id"`
	PodNamespace  string            `json:"pod_namespace"`
	Pod           string            `json:"pod"`
	ContainerName string            `json:"container_name"`
	PodUID        string            `json:"pod_uid"`
	SandboxID     string            `json:"sandbox_id"`
	Sandbox       bool              `json:"sandbox"`
	PodLabels     map[string]string `json:"pod_labels"`
}

func testCRIJSON(t *testing.T, ch *criHarness) {
	got := map[string]criContainerJSON{}
	for _, line := range strings.Split(strings.TrimSpace(ch.mustCLI(t, "ls", "--all", "--format", "json")), "\n") {
		var row criContainerJSON
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		got[row.ID] = row
	}
	sb := ch.ids["web-1/(sandbox)"]
	webLabels := map[string]string{"app": "web", "tier": "front"}
	want := map[string]criContainerJSON{
		"web-1/php":       {PodNamespace: "shop", Pod: "web-1", ContainerName: "php", PodUID: "0b5c4a5e-web-1", SandboxID: sb, PodLabels: webLabels},
		"web-1/(sandbox)": {PodNamespace: "shop", Pod: "web-1", PodUID: "0b5c4a5e-web-1", SandboxID: sb, Sandbox: true, PodLabels: webLabels},
		"kube-proxy-x/kube-proxy": {PodNamespace: "kube-system", Pod: "kube-proxy-x", ContainerName: "kube-proxy", PodUID: "9d1e-proxy",
			SandboxID: ch.ids["kube-proxy-x/(sandbox)"], PodLabels: map[string]string{"app": "kube-proxy",
				testcri.LabelPodName: "kube-proxy-x", testcri.LabelPodNamespace: "kube-system", testcri.LabelPodUID: "9d1e-proxy"}},
	}
	for key, w := range want {
		w.ID = ch.ids[key]
		if g := got[w.ID]; !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", key, g, w)
		}
	}
}

// testCRIDiffCollect attacks the php container of the pod (a root user added
// to /etc/passwd), diffs it and its sidecar, and collects it.
func testCRIDiffCollect(t *testing.T, ch *criHarness) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	php := ch.ids["web-1/php"]
	// The attack: a root user in the snapshot, a setuid shell in the
	// pod's /dev/shm (a host tmpfs the CRI plugin bind-mounts into every
	// container of the pod) and a poisoned /etc/hosts (the sandbox's file,
	// bind-mounted too).
	attack := "echo 'mallory:x:0:0::/root:/bin/sh' >> /etc/passwd && cp /bin/busybox /dev/shm/sh && chmod 4755 /dev/shm/sh" +
		" && echo '203.0.113.7 registry.k8s.io' >> /etc/hosts"
	if _, err := ch.cri.ExecSync(ctx, php, "sh", "-c", attack); err != nil {
		t.Fatal(err)
	}
	// What the pod shares shows in every container of the pod, marked with
	// its source; the snapshot's change only in the attacked one. The table
	// is sorted by path, whatever the source.
	shared := "A /dev/shm/sh\t[tmpfs]\nC /etc/hosts\t[bind]\n"
	want := "A /dev/shm/sh\t[tmpfs]\nC /etc\nC /etc/hosts\t[bind]\nC /etc/passwd\n"
	if got := ch.mustCLI(t, "diff", php[:12]); got != want {
		t.Errorf("diff of the attacked container:\n%s\nwant:\n%s", got, want)
	}
	if got := ch.mustCLI(t, "diff", ch.ids["web-1/sidecar"]); got != shared {
		t.Errorf("diff of the sidecar:\n%s\nwant:\n%s", got, shared)
	}
	checkCRIAttackJSON(t, ch, php)

	out := filepath.Join(t.TempDir(), "php-bag")
	ch.mustCLI(t, "collect", php, "-o", out, "--examiner", "alice", "--case", "IR-K8S")
	if v := ch.mustCLI(t, "verify", out); !strings.Contains(v, "VALID") {
		t.Errorf("verify:\n%s", v)
	}
	b, err := os.ReadFile(filepath.Join(out, "metadata", "acquisition.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Namespace string            `json:"namespace"`
		Name      string            `json:"name"`
		UID       string            `json:"uid"`
		Container string            `json:"container"`
		SandboxID string            `json:"sandbox_id"`
		Sandbox   bool              `json:"sandbox"`
		Labels    map[string]string `json:"labels"`
	}
	var raw struct {
		Pod json.RawMessage `json:"pod"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || json.Unmarshal(raw.Pod, &pod) != nil {
		t.Fatalf("acquisition.json pod: %s (%v)", raw.Pod, err)
	}
	wantPod := pod
	wantPod.Namespace, wantPod.Name, wantPod.UID, wantPod.Container = "shop", "web-1", "0b5c4a5e-web-1", "php"
	wantPod.SandboxID, wantPod.Sandbox, wantPod.Labels = ch.ids["web-1/(sandbox)"], false, map[string]string{"app": "web", "tier": "front"}
	if !reflect.DeepEqual(pod, wantPod) {
		t.Errorf("acquisition pod %+v, want %+v", pod, wantPod)
	}
	checkCRIAttackBag(t, out)
	info, err := os.ReadFile(filepath.Join(out, "bag-info.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"Kubernetes-Pod: shop/web-1", "Kubernetes-Pod-UID: 0b5c4a5e-web-1", "Kubernetes-Container-Name: php",
		"Kubernetes-Pod-Sandbox-ID: " + ch.ids["web-1/(sandbox)"], "Kubernetes-Pod-Label: app=web", "Kubernetes-Pod-Label: tier=front",
	} {
		if !strings.Contains(string(info), "\n"+line+"\n") {
			t.Errorf("bag-info.txt lacks %q:\n%s", line, info)
		}
	}
}

// checkCRIAttackJSON checks the sources and the setuid bit of the attack's
// entries outside the snapshot in diff's JSON.
func checkCRIAttackJSON(t *testing.T, ch *criHarness, id string) {
	t.Helper()
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(ch.mustCLI(t, "diff", "--format", "json", id)), "\n") {
		var c struct {
			Path, Source, Mount, Mode string
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("diff JSON line %q: %v", line, err)
		}
		found[c.Path] = c.Source + " " + c.Mount + " " + c.Mode
	}
	for path, want := range map[string]string{
		"/etc/passwd": "  ",
		"/dev/shm/sh": "tmpfs /dev/shm ",
		"/etc/hosts":  "bind /etc/hosts ",
	} {
		got, ok := found[path]
		if !ok || !strings.HasPrefix(got, want) {
			t.Errorf("diff JSON: %s is %q, want source and mount %q", path, got, want)
		}
	}
	if m := found["/dev/shm/sh"]; !strings.Contains(m, "s") {
		t.Errorf("diff JSON: /dev/shm/sh mode %q has no setuid bit", m)
	}
}

// checkCRIAttackBag checks that the bag holds the poisoned hosts file and the
// setuid shell, with their sources, besides the snapshot's change.
func checkCRIAttackBag(t *testing.T, bag string) {
	t.Helper()
	jsonl, err := os.ReadFile(filepath.Join(bag, bundle.MountChangesJSONL))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"path":"/dev/shm/sh"`, `"path":"/etc/hosts"`} {
		if !strings.Contains(string(jsonl), want) {
			t.Errorf("%s lacks %s:\n%s", bundle.MountChangesJSONL, want, jsonl)
		}
	}
	archives, _ := filepath.Glob(filepath.Join(bag, "data", "mounts", "*.tar"))
	var poisoned, shell bool
	for _, a := range archives {
		out, err := exec.Command("tar", "-xOf", a).Output()
		if err != nil {
			t.Fatalf("tar -xOf %s: %v", a, err)
		}
		poisoned = poisoned || strings.Contains(string(out), "203.0.113.7 registry.k8s.io")
		list, _ := exec.Command("tar", "-tvf", a).Output()
		shell = shell || strings.Contains(string(list), "-rwsr-xr-x") && strings.Contains(string(list), "sh")
	}
	if !poisoned || !shell {
		t.Errorf("bag archives %v: poisoned hosts %v, setuid shell %v", archives, poisoned, shell)
	}
	changes, err := os.ReadFile(filepath.Join(bag, bundle.ChangesJSONL))
	if err != nil || !strings.Contains(string(changes), `"path":"/etc/passwd"`) {
		t.Errorf("%s lacks /etc/passwd (%v)", bundle.ChangesJSONL, err)
	}
}
