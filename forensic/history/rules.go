package history

import "sort"

// Rule describes one check. IDs are stable across releases; a retired rule's
// ID is never reused.
type Rule struct {
	ID       string
	Title    string
	Severity Severity
	Help     string
}

// Rule IDs.
const (
	RuleRemoteExec       = "CTRF-IMG-001"
	RuleAddURL           = "CTRF-IMG-002"
	RuleSetuid           = "CTRF-IMG-003"
	RuleWorldWritable    = "CTRF-IMG-004"
	RulePreload          = "CTRF-IMG-005"
	RuleLibraryPath      = "CTRF-IMG-006"
	RuleSearchPath       = "CTRF-IMG-007"
	RuleSecretName       = "CTRF-IMG-008"
	RuleSecretValue      = "CTRF-IMG-009"
	RuleEntrypoint       = "CTRF-IMG-010"
	RuleRootUser         = "CTRF-IMG-011"
	RuleBackToRoot       = "CTRF-IMG-012"
	RuleLayerMismatch    = "CTRF-IMG-013"
	RuleNoHistory        = "CTRF-IMG-014"
	RuleTimestamps       = "CTRF-IMG-015"
	RuleInsecurePackage  = "CTRF-IMG-016"
	RuleUnrecordedConfig = "CTRF-IMG-017"
)

// Rules returns the catalog, sorted by ID. The slice is a fresh copy.
func Rules() []Rule {
	rs := catalog()
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

// ruleIndex maps rule IDs to their catalog entry.
func ruleIndex() map[string]Rule {
	m := make(map[string]Rule)
	for _, r := range catalog() {
		m[r.ID] = r
	}
	return m
}

func catalog() []Rule {
	return append(buildRules(), configRules()...)
}

func buildRules() []Rule {
	return []Rule{
		{RuleRemoteExec, "RUN downloads and executes remote code", High,
			"A RUN step executes content it fetched or decoded without a recorded integrity check: " +
				"curl/wget/nc output piped into sh, bash, ash, dash, zsh, ksh, python, perl, ruby, node or php " +
				"(through sudo/env, any flags such as -fsSL or -qO-, and intermediate pipes); base64 -d piped into a shell; " +
				"eval \"$(curl ...)\", sh -c \"$(wget -qO- ...)\", bash <(curl ...), source <(curl ...); or a file downloaded " +
				"with curl -o/-O, wget or a redirect that a later command of the same RUN executes directly or through an interpreter. " +
				"The download-then-run form is not reported when sha*sum -c, gpg --verify, cosign or minisign runs between the " +
				"download and the execution. A download that is only saved (curl -o file URL) is not reported. Nested sh -c scripts are inspected."},
		{RuleAddURL, "ADD fetches a remote URL", Medium,
			"An ADD step's source is an http, https or ftp URL: the content came from the network at build time and is not " +
				"reproducible from the build context. Check what the layer contains at the destination."},
		{RuleSetuid, "chmod sets the setuid or setgid bit", High,
			"A RUN step runs chmod, install -m or mkdir -m with a mode that sets setuid or setgid " +
				"(u+s, g+s, +s, a+s, 4755, 2755, 6755...), a classic way to keep a root backdoor in an image."},
		{RuleWorldWritable, "chmod makes files world-writable", Medium,
			"A RUN step runs chmod, install -m or mkdir -m with a mode granting write to others (777, 666, o+w, a+w) " +
				"without the sticky bit. Sticky world-writable directories such as chmod 1777 /tmp are not reported."},
		{RulePreload, "Dynamic loader preload configured", High,
			"LD_PRELOAD or LD_AUDIT is set by ENV or in the config Env, or a RUN/COPY/ADD step writes /etc/ld.so.preload: " +
				"every dynamically linked process in the container loads that library first, which is how userland rootkits hide. " +
				"Allocators (jemalloc, tcmalloc, mimalloc) are a legitimate use; the Reason says so, the severity stays."},
		{RuleLibraryPath, "LD_LIBRARY_PATH set", Low,
			"LD_LIBRARY_PATH is set by ENV or in the config Env. Common for CUDA or vendor SDK images, but it lets a directory " +
				"override system libraries; review the directories (CTRF-IMG-007 reports unusual ones)."},
		{RuleSearchPath, "Search path puts a writable, hidden or relative directory first", Medium,
			"ENV or config Env sets PATH with an entry that comes before a system directory (/usr/local/sbin, /usr/local/bin, " +
				"/usr/sbin, /usr/bin, /sbin, /bin or $PATH), or a PATH with no system directory, where the entry is /tmp, /var/tmp, " +
				"/dev/shm, /run/shm, a hidden directory (/.x, /opt/.cache), a relative entry or an empty entry (the current directory); " +
				"or LD_LIBRARY_PATH with such an entry anywhere. Tool homes such as ~/.local, ~/.cargo, .venv and node_modules/.bin are " +
				"not treated as hidden. Entries after every system directory are not reported."},
		{RuleSecretName, "Variable name suggests a baked-in secret", Medium,
			"An ENV, an ARG default, a build argument recorded in a RUN step (|N NAME=value) or a config Env entry has a name " +
				"whose words include PASSWORD, PASSWD, SECRET, TOKEN, CREDENTIAL(S), APIKEY, API_KEY, ACCESS_KEY or PRIVATE_KEY, and a " +
				"non-empty literal value. Names ending in _FILE, _PATH, _DIR, _URL, _URI, _ENDPOINT, _HOST, _PORT, _NAME or _TYPE (TOKEN_URL, " +
				"PASSWORD_FILE) name a location, not a secret, and are not reported; nor are words that merely start with a keyword " +
				"(TOKENIZER_PARALLELISM), variable references ($X) or booleans. The value is masked in every output."},
		{RuleSecretValue, "Value looks like a credential", High,
			"A value in ENV, ARG, build arguments, config Env, labels, a RUN script or the command line matches a credential " +
				"format: AWS access key ID (AKIA/ASIA + 16), PEM private key block, GitHub token (ghp_, gho_, ghu_, ghs_, ghr_, " +
				"github_pat_), Slack token (xoxb-, xoxp-...), GitLab token (glpat-), Google API key (AIza), Stripe live key, npm token. " +
				"Anything in an image's config or history is readable by whoever can pull it: rotate the credential. The value is masked."},
	}
}

func configRules() []Rule {
	return []Rule{
		{RuleEntrypoint, "Entrypoint runs from a suspicious location or fetches code", High,
			"The config Entrypoint+Cmd runs a program from /tmp, /var/tmp, /dev/shm, /run/shm or a hidden path (relative paths " +
				"resolved against WorkingDir), is a shell one-liner that runs curl, wget, nc or socat, runs nc with -e/-c, or uses /dev/tcp."},
		{RuleRootUser, "Container runs as root", Low,
			"The config User is empty, 0, root, or 0/root with any group: the entrypoint runs as root unless the runtime overrides it."},
		{RuleBackToRoot, "USER switches back to root", Medium,
			"The last USER step in history is root after an earlier step had set a non-root user: a hardened base was deliberately " +
				"undone. Switching to root for a few steps and back to a non-root user is not reported."},
		{RuleLayerMismatch, "History does not match the layers", Medium,
			"The number of history entries with empty_layer=false differs from the number of layers, or the layers' DiffIDs differ " +
				"from the config's rootfs.diff_ids: the config was edited, layers were added by other means, or history was stripped."},
		{RuleNoHistory, "History missing", Low,
			"The config has no history: how the layers were built cannot be reviewed. Some tools omit it; others strip it to hide steps."},
		{RuleTimestamps, "Implausible history timestamps", Low,
			"A history entry was created more than a minute after the image itself, or before 1980 (zeroed dates), or the image's " +
				"created time is before 1980. Often reproducible-build normalisation rather than forgery, hence low."},
		{RuleInsecurePackage, "Package installed from a non-HTTPS URL", Low,
			"A package manager (pip, npm, yarn, pnpm, gem, apk, yum, dnf, microdnf, rpm, zypper, easy_install, conda) is given an " +
				"http:// or ftp:// URL or index, so packages can be swapped in transit."},
		{RuleUnrecordedConfig, "Config command not recorded in history", Low,
			"The config Entrypoint (or Cmd, when no ENTRYPOINT step followed the last CMD step) differs from the last ENTRYPOINT " +
				"(or CMD) step recorded in history: the config was changed outside a Dockerfile build, e.g. docker commit --change or an edit."},
	}
}
