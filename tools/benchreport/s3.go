package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	tm "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ctrforensics/ctrforensics/forensic/objstore"
	"github.com/ctrforensics/ctrforensics/internal/testdaemon"
	"github.com/ctrforensics/ctrforensics/internal/testobjstore"
)

// s3Bench measures `collect -o s3://...` against `collect -o FILE` followed
// by an upload of FILE with the SDK's transfer manager (what `aws s3 cp`
// does), against a local versitygw, on a container holding sizeMiB of new
// data in files files.
func s3Bench(ctx context.Context, bin string, files, sizeMiB, runs int) error {
	vgw, err := testobjstore.Binary()
	if err != nil {
		return err
	}
	w, err := startWebContainer(ctx, "bench-s3")
	if err != nil {
		return err
	}
	defer w.stop()
	fmt.Fprintf(os.Stderr, "writing %d MiB in %d files inside the container...\n", sizeMiB, files)
	script := fmt.Sprintf(`mkdir /data && cd /data && i=0 && while [ $i -lt %d ]; do head -c %d /dev/urandom > f$i || exit 1; i=$((i+1)); done`, files, sizeMiB<<20/files)
	if _, stderr, err := testdaemon.Exec(w.ctx, w.task, script); err != nil {
		return fmt.Errorf("%v: %s", err, stderr)
	}
	work, err := os.MkdirTemp("/var/tmp", "ctrforensics-s3-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	srv, err := testobjstore.Start(ctx, vgw, filepath.Join(work, "server"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	if err := srv.CreateBucket(ctx, "bench", false); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(append(os.Environ(), srv.Env()...), "TMPDIR="+work)
	cmd := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.Env = env
		return c
	}
	cf := []string{"--address", w.daemon.Address, "-n", w.daemon.Namespace}
	run := 0
	measures := []measure{
		{name: "collect -o FILE + upload", run: func() (sample, error) {
			run++
			file := filepath.Join(work, fmt.Sprintf("bag%d.tar.gz", run))
			defer os.Remove(file)
			s1, err := timeCommands(cmd(bin, append(cf, "collect", "-o", file, "bench-s3")...))
			if err != nil {
				return s1, err
			}
			s2, err := timeCommands(cmd(self, "-upload", file, "-to", fmt.Sprintf("s3://bench/file%d.tar.gz", run)))
			return sample{dur: s1.dur + s2.dur, rssKiB: max(s1.rssKiB, s2.rssKiB)}, err
		}},
		{name: "collect -o s3://", against: "collect -o FILE + upload", run: func() (sample, error) {
			run++
			return timeCommands(cmd(bin, append(cf, "collect", "--s3-path-style", "-o", fmt.Sprintf("s3://bench/s3-%d.tar.gz", run), "bench-s3")...))
		}},
	}
	results := map[string][]sample{}
	for i := 0; i < runs; i++ { // interleaved: both see the same machine
		for _, m := range measures {
			s, err := m.run()
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results[m.name] = append(results[m.name], s)
			fmt.Fprintf(os.Stderr, "  %-26s %v\n", m.name, s.dur.Round(time.Millisecond))
			if err := emptyBucket(ctx, srv.Client(), "bench"); err != nil {
				return err
			}
		}
	}
	fmt.Printf("\nobject storage benchmark: %d MiB of changed data in %d files, .tar.gz, versitygw on loopback, %d runs interleaved, median shown\n\n", sizeMiB, files, runs)
	printMeasures(measures, results, sizeMiB, 26)
	ratio := float64(medianOf(results["collect -o s3://"]).dur) / float64(medianOf(results["collect -o FILE + upload"]).dur)
	fmt.Println("\nthe upload is the SDK's transfer manager with SHA-256 part checksums, in its own process (its peak RSS is counted).")
	fmt.Println("targets:")
	target("collect -o s3:// no slower than collect + upload", ratio <= 1.0, fmt.Sprintf("%.2fx", ratio))
	rss := peak(results["collect -o s3://"])
	target("collect -o s3:// peak RSS under 200 MiB", rss < 200<<10, fmt.Sprintf("%.0fMiB", float64(rss)/1024))
	return nil
}

// uploadWorker uploads file to url as `aws s3 cp` does, with the SDK's
// transfer manager (default part size and concurrency, SHA-256 part
// checksums), reaching the store through the standard chain.
func uploadWorker(file, url string) error {
	ctx := context.Background()
	loc, err := objstore.ParseURL(url)
	if err != nil {
		return err
	}
	st, err := objstore.Open(ctx, objstore.Config{PathStyle: true})
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	c := tm.New(st.Client(), func(o *tm.Options) { o.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmSha256 })
	_, err = c.UploadObject(ctx, &tm.UploadObjectInput{Bucket: &loc.Bucket, Key: &loc.Key, Body: f})
	return err
}

// emptyBucket deletes every object of a bucket (the runs' objects would fill
// the disk).
func emptyBucket(ctx context.Context, cl *s3.Client, bucket string) error {
	out, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		return err
	}
	for _, o := range out.Contents {
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
			return fmt.Errorf("delete %s: %w", aws.ToString(o.Key), err)
		}
	}
	return nil
}
