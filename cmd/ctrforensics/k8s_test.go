package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrforensics/ctrforensics/internal/testutil"
)

// TestIsPlugin: the binary run by the name kubectl-ctrforensics is the
// kubectl plugin, whatever its directory, and only by that name.
func TestIsPlugin(t *testing.T) {
	tests := []struct {
		arg0 string
		want bool
	}{
		{"/usr/local/bin/kubectl-ctrforensics", true},
		{"kubectl-ctrforensics", true},
		{`C:\bin\kubectl-ctrforensics.exe`, true},
		{"ctrforensics", false},
		{"/usr/local/bin/ctrforensics", false},
		{"kubectl-ctrforensics-old", false},
		{"/opt/kubectl-ctrforensics/ctrforensics", false},
	}
	for _, tt := range tests {
		if got := isPlugin(tt.arg0); got != tt.want {
			t.Errorf("isPlugin(%q) = %v, want %v", tt.arg0, got, tt.want)
		}
	}
}

// TestPluginHelp: the plugin's help names it as kubectl runs it and shows
// kubectl's flags for the cluster, never containerd's (-n is the pods'
// namespace, not containerd's), nor ctrforensics' other commands.
func TestPluginHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"collect", "--help"}, {"manifest", "--help"}, {}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"/usr/local/bin/kubectl-ctrforensics"}, args...), &stdout, &stderr)
			help := stdout.String()
			if code != 0 || stderr.Len() > 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			for _, want := range []string{"kubectl ctrforensics", "--kubeconfig FILE", "--context string", "--namespace string, -n string  Kubernetes namespace of the pods"} {
				if !strings.Contains(help, want) {
					t.Errorf("no %q in\n%s", want, help)
				}
			}
			for _, not := range []string{"--address", "moby for Docker", "--root", "CONTAINERD_", "ctrforensics k8s", "\n   collector", "\n   image", "\n   completion"} {
				if strings.Contains(help, not) {
					t.Errorf("%q in\n%s", not, help)
				}
			}
		})
	}
}

var update = flag.Bool("update", false, "rewrite the golden files")

// TestPluginHelpGolden pins the help of the plugin's commands as a kubectl
// user reads it.
func TestPluginHelpGolden(t *testing.T) {
	t.Setenv("SUDO_USER", "") // the default of --examiner
	t.Setenv("USER", "alice")
	for _, cmd := range []string{"collect", "manifest"} {
		t.Run(cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"kubectl-ctrforensics", cmd, "--help"}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			testutil.Golden(t, filepath.Join("testdata", "kubectl-ctrforensics-"+cmd+"-help.txt"), stdout.Bytes(), *update)
		})
	}
}

// TestPluginNamespace: kubectl's -n names the pods' namespace before or
// after the command, else the kubeconfig context's namespace applies; a
// containerd flag is refused. The cluster (a kubeconfig naming a closed
// port) fails the first request, whose URL shows the namespace asked.
func TestPluginNamespace(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n" +
		"contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n    namespace: fromcontext\n" +
		"current-context: x\nusers:\n- name: u\n  user:\n    token: t\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--to", "s3://b/p", "--image", "i", "--kubeconfig", kubeconfig}
	tests := []struct {
		bin  string
		args []string
		want string
	}{
		{"kubectl-ctrforensics", []string{"collect", "web", "-n", "prod"}, "/namespaces/prod/pods/web"},
		{"kubectl-ctrforensics", []string{"-n", "prod", "collect", "web"}, "/namespaces/prod/pods/web"},
		{"kubectl-ctrforensics", []string{"--namespace=prod", "collect", "web"}, "/namespaces/prod/pods/web"},
		{"kubectl-ctrforensics", []string{"collect", "web"}, "/namespaces/fromcontext/pods/web"},
		{"kubectl-ctrforensics", []string{"--address", "/run/x.sock", "collect", "web"}, "flag provided but not defined: -address (see `kubectl ctrforensics --help`)"},
		{"ctrforensics", []string{"k8s", "collect", "web", "-n", "prod"}, "/namespaces/prod/pods/web"},
		{"ctrforensics", []string{"k8s", "collect", "web"}, "/namespaces/fromcontext/pods/web"},
	}
	for _, tt := range tests {
		t.Run(tt.bin+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append(append([]string{tt.bin}, tt.args...), common...), &stdout, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// TestK8sUsage: bad command lines of k8s collect and collect's group flags
// are one line and exit 2 before anything is asked of a cluster or a daemon;
// the plugin's manifest is the RBAC.
func TestK8sUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"kubectl-ctrforensics", "collect", "web"}, 2, "missing --to"},
		{[]string{"kubectl-ctrforensics", "collect"}, 2, "name the pods, or select them with -l"},
		{[]string{"kubectl-ctrforensics", "collect", "web", "-l", "app=web"}, 2, "not both"},
		{[]string{"kubectl-ctrforensics", "collect", "web", "-c", "php", "--all-containers"}, 2, "not both"},
		{[]string{"kubectl-ctrforensics", "collect", "web", "--image", "i", "--to", "/tmp/bags"}, 2, "give s3://BUCKET/PREFIX"},
		{[]string{"kubectl-ctrforensics", "collect", "web", "--image", "i", "--to", "s3://b/p", "--case", "a\nb"}, 2, "--case holds a line break"},
		{[]string{"ctrforensics", "collect", "web", "-o", "x", "--bag-group", "a\nb"}, 2, "--bag-group holds a line break"},
		{[]string{"ctrforensics", "collect", "web", "-o", "x", "--bag-group", "g1", "--orchestration", `{"bag_group":"g2"}`}, 2, "give the same"},
		{[]string{"ctrforensics", "collect", "web", "-o", "x", "--orchestration", `{"forged":1}`}, 2, "not an orchestration record"},
		{[]string{"kubectl-ctrforensics", "manifest"}, 0, ""},
		{[]string{"kubectl-ctrforensics", "manifest", "-n", "forensics"}, 2, "-n does not apply (the collector pods' namespace is --collector-namespace)"},
		{[]string{"kubectl-ctrforensics", "--namespace=forensics", "manifest"}, 2, "-n does not apply"},
		{[]string{"kubectl-ctrforensics", "manifest", "--context", "prod"}, 2, "--context does not apply"},
		{[]string{"kubectl-ctrforensics", "manifest", "--collector-namespace", "forensics"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") > 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and %q on one line", code, stderr.String(), tt.code, tt.want)
			}
			if tt.code == 0 && !strings.Contains(stdout.String(), "kind: ClusterRole\n") {
				t.Errorf("manifest:\n%s", stdout.String())
			}
		})
	}
}
