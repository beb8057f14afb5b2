package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/internal/testobjstore"
)

// startS3 runs a versitygw server for one test, with an object-locked bucket
// "evidence" and a plain bucket "plain".
func startS3(t *testing.T) *testobjstore.Server {
	t.Helper()
	bin, err := testobjstore.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := h.ctx(t)
	srv, err := testobjstore.Start(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	for b, lock := range map[string]bool{"evidence": true, "plain": false} {
		if err := srv.CreateBucket(ctx, b, lock); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// s3CLI runs ctrforensics with the server's credentials and endpoint in its
// environment, and a private TMPDIR (where nothing but the session's empty
// mount points may appear: a bag sent to a bucket is never a local file).
func s3CLI(t *testing.T, srv *testobjstore.Server, tmp string, env []string, args ...string) result {
	t.Helper()
	return h.cliWith(t, func(cmd *exec.Cmd) {
		cmd.Env = append(append(os.Environ(), srv.Env()...), "TMPDIR="+tmp)
		cmd.Env = append(cmd.Env, env...)
	}, append([]string{"--address", h.daemon.Address, "-n", h.daemon.Namespace}, args...)...)
}

func mustS3CLI(t *testing.T, srv *testobjstore.Server, tmp string, args ...string) string {
	t.Helper()
	r := s3CLI(t, srv, tmp, nil, args...)
	if r.code != 0 {
		t.Fatalf("ctrforensics %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestS3CollectVerify stores a bundle in an object-locked bucket and checks
// it from there: the object's retention and metadata, no multipart upload
// left, nothing staged left, `verify s3://` and `custody show s3://` with
// the stored event matching the object, deletion refused before the retain
// date; a replaced object fails verification.
func TestS3CollectVerify(t *testing.T) {
	srv := startS3(t)
	c := attackedForBundle(t, "s3-collect")
	ctx, cl := h.ctx(t), srv.Client()
	tmp := t.TempDir()
	until := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	url := "s3://evidence/cases/web.tar.gz"
	priv, pub := keyPair(t, "alice")
	out := mustS3CLI(t, srv, tmp, "collect", "-o", url, "--examiner", "alice", "--s3-path-style", "--sign-key", priv,
		"--retain-until", until.Format(time.RFC3339), "--object-lock", "governance", c.id)
	for _, want := range []string{"collected container " + c.id + " into " + url, "stored:       " + url, "retention:    governance until"} {
		if !strings.Contains(out, want) {
			t.Errorf("collect output lacks %q:\n%s", want, out)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR after the upload: %v", left)
	}
	noUploads(t, cl, "evidence")
	key := aws.String("cases/web.tar.gz")
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("evidence"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if head.ObjectLockMode != s3types.ObjectLockModeGovernance || head.ObjectLockRetainUntilDate == nil || !head.ObjectLockRetainUntilDate.Equal(until) {
		t.Errorf("object lock %q until %v, want GOVERNANCE until %v", head.ObjectLockMode, head.ObjectLockRetainUntilDate, until)
	}
	if head.Metadata["ctrforensics-custody-record"] != "cases/web.tar.gz.custody.jsonl" {
		t.Errorf("object metadata %v does not name the custody record", head.Metadata)
	}
	tags := objectTags(t, cl, "evidence", "cases/web.tar.gz", aws.ToString(head.VersionId))
	if !strings.HasPrefix(tags["ctrforensics-bag"], "sha256:") || !strings.HasPrefix(tags["ctrforensics-custody-head"], "sha256:") {
		t.Errorf("object tags %v lack the bag digest and custody head", tags)
	}
	digest, size := objectDigest(t, cl, "evidence", "cases/web.tar.gz")

	v := mustS3CLI(t, srv, tmp, "verify", "--s3-path-style", "--pubkey", pub, url)
	for _, want := range []string{"signature: valid", "custody:   2 event(s)", "stored       alice (signed)", "result:    VALID"} {
		if !strings.Contains(v, want) {
			t.Errorf("verify output lacks %q:\n%s", want, v)
		}
	}
	var events []custody.Event
	for _, line := range strings.Split(strings.TrimSpace(mustS3CLI(t, srv, tmp, "custody", "show", "--format", "json", "--s3-path-style", url)), "\n") {
		var e custody.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("custody show: %v: %q", err, line)
		}
		events = append(events, e)
	}
	if len(events) != 2 || events[1].Action != "stored" || events[1].Stored == nil {
		t.Fatalf("custody show: %+v", events)
	}
	st := events[1].Stored
	if st.URL != url || st.VersionID != aws.ToString(head.VersionId) || st.ETag != aws.ToString(head.ETag) || st.SHA256 != digest || st.Size != size {
		t.Errorf("stored event %+v, object version %s ETag %s sha256 %s size %d", st, aws.ToString(head.VersionId), aws.ToString(head.ETag), digest, size)
	}
	if events[1].Bag != tags["ctrforensics-bag"] || events[1].Prev != tags["ctrforensics-custody-head"] {
		t.Errorf("stored event names bag %s after head %s, object tags %v", events[1].Bag, events[1].Prev, tags)
	}

	for _, k := range []string{"cases/web.tar.gz", "cases/web.tar.gz.custody.jsonl"} {
		_, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("evidence"), Key: aws.String(k), VersionId: head.VersionId})
		if k != "cases/web.tar.gz" {
			h2, herr := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("evidence"), Key: aws.String(k)})
			if herr != nil {
				t.Fatal(herr)
			}
			_, err = cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("evidence"), Key: aws.String(k), VersionId: h2.VersionId})
		}
		if err == nil {
			t.Errorf("the store deleted %s before its retain date", k)
		}
	}
	if _, _, err := objectDigestErr(cl, "evidence", "cases/web.tar.gz"); err != nil {
		t.Errorf("the object is gone after the refused deletion: %v", err)
	}

	t.Run("replaced object", func(t *testing.T) {
		// Where the bucket lets an object be replaced, another sound bag
		// put under the key fails: it is not the object the stored
		// event names.
		plain := "s3://plain/web.tar.gz"
		mustS3CLI(t, srv, tmp, "collect", "-o", plain, "--s3-path-style", c.id)
		mustS3CLI(t, srv, tmp, "collect", "-o", "s3://plain/other.tar.gz", "--s3-path-style", c.id)
		mustS3CLI(t, srv, tmp, "verify", "--s3-path-style", plain)
		body, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("plain"), Key: aws.String("other.tar.gz")})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(body.Body)
		body.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("plain"), Key: aws.String("web.tar.gz"), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
		r := s3CLI(t, srv, tmp, nil, "verify", "--s3-path-style", plain)
		for _, want := range []string{"FAIL custody.jsonl: stored: the stored event records SHA-256", "does not begin with the bag's own chain", "result:    INVALID"} {
			if r.code != 1 || !strings.Contains(r.stdout, want) {
				t.Errorf("verify of a replaced object: exit %d, lacks %q\n%s%s", r.code, want, r.stdout, r.stderr)
			}
		}
	})
}

// TestS3CollectRefused: a store that cannot take the bundle is one line
// naming the problem and its fix, exit 2, before any evidence is touched (no
// lease, nothing staged).
func TestS3CollectRefused(t *testing.T) {
	srv := startS3(t)
	c := h.runContainer(t, "s3-refused", "overlayfs")
	tmp := t.TempDir()
	mustS3CLI(t, srv, tmp, "collect", "-o", "s3://plain/taken.tar.gz", "--s3-path-style", c.id)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"wrong credentials", []string{"AWS_SECRET_ACCESS_KEY=wrong"}, nil, "the store refused the credentials"},
		{"unknown key", []string{"AWS_ACCESS_KEY_ID=nobody"}, nil, "the store refused the credentials"},
		{"unreachable", []string{"AWS_ENDPOINT_URL=http://127.0.0.1:9"}, nil, "the store does not answer"},
		{"missing bucket", nil, []string{"-o", "s3://nosuchbucket/x.tar.gz"}, "no such bucket"},
		{"existing object", nil, []string{"-o", "s3://plain/taken.tar.gz"}, "the object already exists"},
		{"no object lock", nil, []string{"-o", "s3://plain/y.tar.gz", "--retain-until", "2099-01-01", "--object-lock", "compliance"}, "the bucket has no object lock"},
		{"bad URL", nil, []string{"-o", "s3://bucket-only"}, "is not an object URL"},
		{"commit", nil, []string{"-o", "s3://plain/c.tar.gz", "--commit"}, "--commit cannot go with -o s3://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"collect", "--s3-path-style"}, tc.args...)
			if tc.args == nil {
				args = append(args, "-o", "s3://plain/z.tar.gz")
			}
			r := s3CLI(t, srv, tmp, tc.env, append(args, c.id)...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 2 || len(lines) != 1 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "(") {
				t.Errorf("exit %d, stderr %q: want exit 2 and one line with %q and a hint", r.code, r.stderr, tc.want)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
			if l := ourLeases(t); len(l) != 0 {
				t.Errorf("leases left: %v", l)
			}
		})
	}
}

// TestS3ReadRefused: verify and custody show of an object that cannot be read
// are one line naming the problem and its fix, exit 2.
func TestS3ReadRefused(t *testing.T) {
	srv := startS3(t)
	tmp := t.TempDir()
	for _, tc := range []struct {
		name string
		env  []string
		url  string
		want string
	}{
		{"wrong credentials", []string{"AWS_SECRET_ACCESS_KEY=wrong"}, "s3://plain/x.tar.gz", "the store refused the credentials"},
		{"unreachable", []string{"AWS_ENDPOINT_URL=http://127.0.0.1:9"}, "s3://plain/x.tar.gz", "the store does not answer"},
		{"missing bucket", nil, "s3://nosuchbucket/x.tar.gz", "no such bucket"},
		{"missing object", nil, "s3://plain/x.tar.gz", "no such object"},
	} {
		for _, cmd := range [][]string{{"verify"}, {"custody", "show"}} {
			t.Run(tc.name+"/"+strings.Join(cmd, " "), func(t *testing.T) {
				r := s3CLI(t, srv, tmp, tc.env, append(cmd, "--s3-path-style", tc.url)...)
				if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "(") {
					t.Errorf("exit %d, stderr %q: want exit 2 and one line with %q and a hint", r.code, r.stderr, tc.want)
				}
			})
		}
	}
}

// TestS3CollectInterrupted interrupts collect during its upload: SIGINT and
// SIGTERM abort the multipart upload at once; after SIGKILL, cleanup aborts
// it (the lease names it). Either way no object and no part is left. While
// the upload runs, no byte of the bag is on local disk.
func TestS3CollectInterrupted(t *testing.T) {
	srv := startS3(t)
	c := h.runContainer(t, "s3-interrupt", "overlayfs")
	h.attack(t, c, `head -c 160000000 /dev/urandom > /tmp/noise`) // incompressible: the upload takes a while
	cl := srv.Client()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			key := "killed-" + strings.ToLower(sig.String()) + ".tar.gz"
			cmd := exec.Command(h.bin, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "collect", "--s3-path-style",
				"-o", "s3://plain/"+key, c.id)
			cmd.Env = append(append(os.Environ(), srv.Env()...), "TMPDIR="+tmp)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			if !waitFor(done, func() bool { return partsUploaded(t, cl, "plain", key) }) {
				t.Fatalf("collect finished before a part was uploaded: make the container's data larger\n%s", stderr.String())
			}
			if n := localBytes(t, tmp); n != 0 {
				t.Errorf("%d bytes of files in TMPDIR while the bundle is uploaded: the bag is staged on local disk", n)
			}
			cmd.Process.Signal(sig)
			<-done
			if sig == syscall.SIGKILL {
				if uploads(t, cl, "plain") == 0 {
					t.Fatal("no unfinished upload after SIGKILL: the test killed nothing")
				}
				// Without credentials cleanup cannot abort the upload:
				// it says so, and keeps the lease for the next try.
				r := h.cliWith(t, func(cmd *exec.Cmd) {
					cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_CONFIG_FILE=/dev/null",
						"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
				}, "--address", h.daemon.Address, "-n", h.daemon.Namespace, "cleanup")
				if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "the store refused the credentials") {
					t.Errorf("cleanup without credentials: exit %d, stderr %q", r.code, r.stderr)
				}
				rep := mustS3CLI(t, srv, tmp, "cleanup")
				if !strings.Contains(rep, "removed: unfinished upload to s3://plain/"+key+" (upload ") || strings.Contains(rep, "partial bag") {
					t.Errorf("cleanup did not abort the upload, or found a local partial bag:\n%s", rep)
				}
			} else if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Errorf("exit %d after %v: %s", code, sig, stderr.String())
			}
			noUploads(t, cl, "plain")
			if _, err := cl.HeadObject(h.ctx(t), &s3.HeadObjectInput{Bucket: aws.String("plain"), Key: aws.String(key)}); err == nil {
				t.Errorf("an interrupted upload left the object %s", key)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
			if l := ourLeases(t); len(l) != 0 {
				t.Errorf("leases left: %v", l)
			}
		})
	}
}

// partsUploaded reports whether an upload to key has a part stored.
// localBytes sums the sizes of the regular files below dir on dir's own
// file system (the session's mounts below it are not counted).
func localBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var root syscall.Stat_t
	if err := syscall.Lstat(dir, &root); err != nil {
		t.Fatal(err)
	}
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		var st syscall.Stat_t
		if err != nil || syscall.Lstat(p, &st) != nil {
			return nil // a mount point or file that came and went
		}
		switch {
		case st.Dev != root.Dev && d.IsDir():
			return filepath.SkipDir
		case d.Type().IsRegular() && st.Dev == root.Dev:
			n += st.Size
		}
		return nil
	})
	return n
}

// objectTags returns the tags of an object's version.
func objectTags(t *testing.T, cl *s3.Client, bucket, key, version string) map[string]string {
	t.Helper()
	out, err := cl.GetObjectTagging(h.ctx(t), &s3.GetObjectTaggingInput{Bucket: &bucket, Key: &key, VersionId: aws.String(version)})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tag := range out.TagSet {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return tags
}

func partsUploaded(t *testing.T, cl *s3.Client, bucket, key string) bool {
	ctx := h.ctx(t)
	out, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		return false
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != key {
			continue
		}
		parts, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
		if err == nil && len(parts.Parts) > 0 {
			return true
		}
	}
	return false
}

func uploads(t *testing.T, cl *s3.Client, bucket string) int {
	t.Helper()
	out, err := cl.ListMultipartUploads(h.ctx(t), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

func noUploads(t *testing.T, cl *s3.Client, bucket string) {
	t.Helper()
	if n := uploads(t, cl, bucket); n != 0 {
		t.Errorf("%d unfinished multipart upload(s) left in %s", n, bucket)
	}
}

// objectDigest returns the sha256 and size of an object.
func objectDigest(t *testing.T, cl *s3.Client, bucket, key string) (string, int64) {
	t.Helper()
	d, n, err := objectDigestErr(cl, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return d, n
}

func objectDigestErr(cl *s3.Client, bucket, key string) (string, int64, error) {
	out, err := cl.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", 0, err
	}
	defer out.Body.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, out.Body)
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(sum.Sum(nil)), n, nil
}
