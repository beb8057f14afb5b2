package objstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	tm "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// Upload part size and parallel parts: memory holds at most
// (uploadConcurrency+1) parts of the stream at once.
const (
	uploadPartSize    = 16 << 20
	uploadConcurrency = 4
	// abortTimeout bounds the abort of an upload that failed or was
	// interrupted (it runs on a fresh context).
	abortTimeout = 30 * time.Second
)

// Sink stores a sealed bundle as one object (see bundle.Sink).
type Sink struct {
	store *Store
	loc   Location
	// Retention, when set, is the object lock of the object and its
	// custody record.
	Retention *Retention
	// Actor and Key are the stored event's actor and signing key (nil:
	// unsigned).
	Actor string
	Key   ed25519.PrivateKey
	// Stored, once Store returned, describes the object.
	Stored *custody.Stored
}

// NewSink returns a sink writing the object at loc.
func (s *Store) NewSink(loc Location) *Sink { return &Sink{store: s, loc: loc} }

// Name is the object's URL.
func (k *Sink) Name() string { return k.loc.String() }

// Check makes sure, before any evidence is touched, that the store answers,
// accepts the credentials, holds the bucket (with object lock when a
// retention is asked for), and holds neither the object nor its custody
// record.
func (k *Sink) Check(ctx context.Context) error {
	for _, l := range []Location{k.loc, k.loc.record()} {
		err := k.store.probe(ctx, "upload to", l)
		var ae *AccessError
		switch {
		case err == nil:
			return &AccessError{Problem: Exists, Op: "upload to", URL: l.String()}
		case errors.As(err, &ae) && ae.Problem == NoObject:
		case errors.As(err, &ae) && ae.Problem == Denied:
			// May not read: a store refuses to say whether a key
			// exists. The upload is conditional all the same.
		default:
			return err
		}
	}
	if k.Retention != nil {
		out, err := k.store.c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &k.loc.Bucket})
		if err != nil || out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != s3types.ObjectLockEnabledEnabled {
			return &AccessError{Problem: NoObjectLock, Op: "lock objects in", URL: Scheme + k.loc.Bucket, Err: err}
		}
	}
	return nil
}

// probe reads the first byte of the object at l: nil when it exists, else
// an error saying why not. Unlike HEAD, whose answers have no body, a GET's
// error names its cause (a refused key, a missing bucket or object).
func (s *Store) probe(ctx context.Context, op string, l Location) error {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.Bucket, Key: &l.Key, Range: aws.String("bytes=0-0")})
	if err != nil {
		err = classify(err, op, l.String())
		var ae *AccessError
		if errors.As(err, &ae) && ae.Problem == NoBucket {
			ae.URL = Scheme + l.Bucket
		}
		return err
	}
	return out.Body.Close()
}

// Store uploads the bag that pack writes as the sink's object, then writes
// its custody record: the bag's chain followed by a stored event naming the
// object (bucket, key, version, ETag, size, SHA-256). It returns that event's
// digest, the new custody head.
func (k *Sink) Store(ctx context.Context, pack func(io.Writer) error, chain []custody.Entry, bag string) (string, error) {
	st, err := k.upload(ctx, pack, bag, custody.Head(chain))
	if err != nil {
		return "", err
	}
	k.Stored = st
	line, err := custody.NextStored(chain, time.Now(), k.Actor, "", bag, *st, k.Key)
	if err != nil {
		return "", err
	}
	var rec bytes.Buffer
	for _, e := range chain {
		rec.Write(e.Line)
	}
	rec.Write(line)
	if err := k.putRecord(ctx, rec.Bytes()); err != nil {
		return "", fmt.Errorf("the bundle is stored as %s, but its custody record is not: %w", k.loc, err)
	}
	return custody.LineDigest(line), nil
}

// upload streams pack's output to the object with a multipart upload, each
// part carrying its SHA-256 checksum, and returns what the store reports of
// the completed object with the digest of every byte sent. A failed or
// interrupted upload is aborted.
func (k *Sink) upload(ctx context.Context, pack func(io.Writer) error, bag, head string) (*custody.Stored, error) {
	pr, pw := io.Pipe()
	sum := sha256.New()
	count := &counter{}
	packed := make(chan error, 1)
	go func() {
		err := pack(io.MultiWriter(pw, sum, count))
		pw.CloseWithError(err) // nil: EOF, the end of the object
		packed <- err
	}()
	in := &tm.UploadObjectInput{Bucket: &k.loc.Bucket, Key: &k.loc.Key, Body: pr,
		ChecksumAlgorithm: tmtypes.ChecksumAlgorithmSha256,
		// Never replace an object: the store refuses to complete the
		// upload when the key appeared meanwhile.
		IfNoneMatch: aws.String("*"),
		Metadata:    map[string]string{MetaBag: bag, MetaCustodyHead: head, MetaCustodyRecord: k.loc.record().Key}}
	if r := k.Retention; r != nil {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = tmtypes.ObjectLockMode(r.Mode), aws.Time(r.Until)
	}
	out, err := k.transfer().UploadObject(ctx, in)
	pr.CloseWithError(errUploadEnded) // unblocks pack when the upload stopped reading
	if perr := <-packed; err == nil && perr != nil {
		err = perr // cannot happen: a pack error fails the upload's read
	}
	if err != nil {
		return nil, k.uploadErr(err)
	}
	return k.describe(ctx, out, count.n, "sha256:"+hex.EncodeToString(sum.Sum(nil)))
}

// errUploadEnded tells pack the upload no longer reads.
var errUploadEnded = errors.New("the upload ended")

func (k *Sink) uploadErr(err error) error {
	var mpe tm.MultipartUploadError
	if errors.As(err, &mpe) {
		err = fmt.Errorf("multipart upload %s aborted: %w", mpe.UploadID(), err)
	}
	return classify(err, "upload to", k.loc.String())
}

// transfer is the SDK's transfer manager, configured for SHA-256 part
// checksums and an abort that runs even after ctx was cancelled.
func (k *Sink) transfer() *tm.Client {
	return tm.New(k.store.c, func(o *tm.Options) {
		o.PartSizeBytes = uploadPartSize
		o.MultipartUploadThreshold = uploadPartSize
		o.Concurrency = uploadConcurrency
		o.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmSha256
		o.FailTimeout = abortTimeout
	})
}

// describe returns the stored object as the store reports it, checked
// against what was sent.
func (k *Sink) describe(ctx context.Context, out *tm.UploadObjectOutput, size int64, digest string) (*custody.Stored, error) {
	st := &custody.Stored{URL: k.loc.String(), Bucket: k.loc.Bucket, Key: k.loc.Key, Size: size, SHA256: digest,
		VersionID: aws.ToString(out.VersionID), ETag: aws.ToString(out.ETag), ChecksumSHA256: aws.ToString(out.ChecksumSHA256)}
	h, err := k.store.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &k.loc.Bucket, Key: &k.loc.Key,
		VersionId: nonEmpty(st.VersionID), ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		return nil, classify(err, "read back", k.loc.String())
	}
	if n := aws.ToInt64(h.ContentLength); n != size {
		return nil, fmt.Errorf("read back %s: the store holds %d bytes, %d were sent", k.loc, n, size)
	}
	st.VersionID, st.ETag = aws.ToString(h.VersionId), aws.ToString(h.ETag)
	if c := aws.ToString(h.ChecksumSHA256); c != "" {
		st.ChecksumSHA256 = c
	}
	return st, nil
}

// putRecord writes the object's custody record once, with its retention.
func (k *Sink) putRecord(ctx context.Context, b []byte) error {
	rec := k.loc.record()
	in := &s3.PutObjectInput{Bucket: &rec.Bucket, Key: &rec.Key, Body: bytes.NewReader(b),
		ContentType: aws.String("application/jsonl"), ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
		IfNoneMatch: aws.String("*")}
	if r := k.Retention; r != nil {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = s3types.ObjectLockMode(r.Mode), aws.Time(r.Until)
	}
	_, err := k.store.c.PutObject(ctx, in)
	return classify(err, "upload to", rec.String())
}

// Record describes the upload for `cleanup` (a label of the run's lease):
// enough to find and abort the multipart uploads a killed run left, with
// credentials from the standard chain.
func (k *Sink) Record() string {
	b, err := json.Marshal(uploadRecord{URL: k.loc.String(), Endpoint: k.store.cfg.Endpoint,
		PathStyle: k.store.cfg.PathStyle, Region: k.store.cfg.Region})
	if err != nil {
		panic(err) // strings and a bool always marshal
	}
	return string(b)
}

// uploadRecord is Record's JSON.
type uploadRecord struct {
	URL       string `json:"url"`
	Endpoint  string `json:"endpoint,omitempty"`
	PathStyle bool   `json:"path_style,omitempty"`
	Region    string `json:"region,omitempty"`
}

type counter struct{ n int64 }

func (c *counter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
