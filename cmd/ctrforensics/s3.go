package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic/objstore"
)

// s3Flags say how to reach an S3-compatible store; credentials and region
// come from the standard AWS chain (environment, shared config and profiles,
// web identity).
func s3Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "s3-endpoint", Sources: cli.EnvVars("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
			Usage: "`URL` of an S3-compatible store other than AWS (e.g. https://minio.example:9000)"},
		&cli.BoolFlag{Name: "s3-path-style", Usage: "address buckets as ENDPOINT/BUCKET (most self-hosted stores need it)"},
		&cli.StringFlag{Name: "s3-region", Usage: "region of the bucket (default: AWS_REGION or the profile's, else us-east-1)"},
	}
}

// objectFlags are collect's flags for a bundle stored in a bucket.
func objectFlags() []cli.Flag {
	return append(s3Flags(),
		&cli.StringFlag{Name: "retain-until", Usage: "with -o s3://...: object lock retention `DATE` (YYYY-MM-DD or RFC 3339); needs --object-lock"},
		&cli.StringFlag{Name: "object-lock", Usage: "with --retain-until: `MODE` governance or compliance (compliance: nobody can delete it before the date)"},
	)
}

// openStore connects to the store the s3 flags describe and parses url.
func openStore(ctx context.Context, c *cli.Command, url string) (*objstore.Store, objstore.Location, error) {
	loc, err := objstore.ParseURL(url)
	if err != nil {
		return nil, loc, err
	}
	s, err := objstore.Open(ctx, objstore.Config{Endpoint: c.String("s3-endpoint"), PathStyle: c.Bool("s3-path-style"), Region: c.String("s3-region")})
	return s, loc, err
}

// objectSink returns the sink of `collect -o s3://...`, checked against the
// store before any evidence is touched.
func objectSink(ctx context.Context, c *cli.Command, url string) (*objstore.Sink, error) {
	s, loc, err := openStore(ctx, c, url)
	if err != nil {
		return nil, err
	}
	k := s.NewSink(loc)
	if c.IsSet("retain-until") || c.IsSet("object-lock") {
		if !c.IsSet("retain-until") || !c.IsSet("object-lock") {
			return nil, fmt.Errorf("--retain-until and --object-lock go together: give both, e.g. --retain-until 2027-12-31 --object-lock compliance")
		}
		if k.Retention, err = objstore.ParseRetention(c.String("object-lock"), c.String("retain-until"), time.Now()); err != nil {
			return nil, fmt.Errorf("--retain-until/--object-lock: %w", err)
		}
	}
	return k, k.Check(ctx)
}

// s3Flag names the s3 flags to repeat in a follow-up command line.
func s3Args(c *cli.Command) string {
	s := ""
	if c.IsSet("s3-endpoint") && c.String("s3-endpoint") != "" {
		s += " --s3-endpoint " + c.String("s3-endpoint")
	}
	if c.Bool("s3-path-style") {
		s += " --s3-path-style"
	}
	if c.IsSet("s3-region") {
		s += " --s3-region " + c.String("s3-region")
	}
	return s
}

// objectHint is the advice for an object storage error, or "".
func objectHint(ae *objstore.AccessError) string {
	switch ae.Problem {
	case objstore.Unreachable:
		return "check --s3-endpoint (or AWS_ENDPOINT_URL) and that the store is up"
	case objstore.Credentials:
		return "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
	case objstore.NoBucket:
		return "create the bucket first, or fix the name; a self-hosted store may need --s3-path-style"
	case objstore.Denied:
		return "these credentials may not do this: ask for s3:PutObject, s3:GetObject, s3:AbortMultipartUpload, s3:ListBucketMultipartUploads"
	case objstore.Exists:
		return "pick a new key: ctrforensics never replaces an object"
	case objstore.NoObject:
		return "check the key: list the bucket with your S3 client"
	case objstore.NoObjectLock:
		return "create the bucket with object lock enabled, or drop --retain-until and --object-lock"
	}
	return ""
}

// uploadGC sets the collector for a collect streamed to a bucket, unless
// GOGC says otherwise: the upload's part buffers (uploadConcurrency+1 parts
// of 16 MiB) live alongside the collect's own memory, and Go's default lets
// the heap reach twice what is live between collections (1 GiB in 10,000
// files: 255 MiB peak RSS at GOGC=100, 185 MiB at 50 with 3 parts in flight).
func uploadGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}
