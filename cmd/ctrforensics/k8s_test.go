package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// TestPluginArgs: the binary run as kubectl's plugin is `ctrforensics k8s`.
func TestPluginArgs(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"/usr/local/bin/kubectl-ctrforensics", "collect", "web"}, []string{"/usr/local/bin/kubectl-ctrforensics", "k8s", "collect", "web"}},
		{[]string{`C:\bin\kubectl-ctrforensics.exe`, "manifest"}, []string{`C:\bin\kubectl-ctrforensics.exe`, "k8s", "manifest"}},
		{[]string{"ctrforensics", "collect", "web"}, []string{"ctrforensics", "collect", "web"}},
		{[]string{"kubectl-ctrforensics-old", "collect"}, []string{"kubectl-ctrforensics-old", "collect"}},
	}
	for _, tt := range tests {
		if got := pluginArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("pluginArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
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
