package version

import (
	"runtime/debug"
	"testing"
)

func TestVCSCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"no vcs", nil, "unknown"},
		{"clean", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}, "0123456789ab"},
		{"dirty", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}, "0123456789ab-dirty"},
		{"short", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}, "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := vcsCommit(tc.settings); got != tc.want {
				t.Errorf("vcsCommit = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLinkerCommitWins(t *testing.T) {
	old := Commit
	t.Cleanup(func() { Commit = old })
	Commit = "feedbee"
	if got := Info().Commit; got != "feedbee" {
		t.Errorf("Info().Commit = %q, want the linker's %q", got, "feedbee")
	}
}
