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
	"hash"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	tm "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// Upload part size and parallel parts: memory holds at most
// (uploadConcurrency+1) parts of the stream at once.
const (
	uploadPartSize    = 16 << 20
	uploadConcurrency = 3
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

// Begin starts the multipart upload of the stream written to the Upload
// it returns, each part carrying its SHA-256 checksum (see bundle.Sink). The
// object's metadata names its custody record; the bag's digest and custody
// head, known only at the end of the stream, are its tags once stored.
func (k *Sink) Begin(ctx context.Context) (bundle.Upload, error) {
	pr, pw := io.Pipe()
	u := &upload{k: k, pw: pw, sum: sha256.New(), done: make(chan struct{})}
	in := &tm.UploadObjectInput{Bucket: &k.loc.Bucket, Key: &k.loc.Key, Body: pr,
		ChecksumAlgorithm: tmtypes.ChecksumAlgorithmSha256,
		// Never replace an object: the store refuses to complete the
		// upload when the key appeared meanwhile.
		IfNoneMatch: aws.String("*"),
		Metadata:    map[string]string{MetaCustodyRecord: k.loc.record().Key}}
	if r := k.Retention; r != nil {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = tmtypes.ObjectLockMode(r.Mode), aws.Time(r.Until)
	}
	go func() {
		defer close(u.done)
		u.out, u.err = k.transfer().UploadObject(ctx, in)
		pr.CloseWithError(errUploadEnded) // a writer still writing learns the upload stopped reading
	}()
	return u, nil
}

// upload is one bundle's stream into a multipart upload.
type upload struct {
	k   *Sink
	pw  *io.PipeWriter
	sum hash.Hash
	n   int64
	// done is closed when the upload returned out or err.
	done chan struct{}
	out  *tm.UploadObjectOutput
	err  error
}

// Write sends b to the upload; it fails once the upload failed.
func (u *upload) Write(b []byte) (int, error) {
	n, err := u.pw.Write(b)
	u.sum.Write(b[:n])
	u.n += int64(n)
	if err != nil {
		return n, u.failure(err)
	}
	return n, nil
}

// failure is why the upload stopped taking the stream.
func (u *upload) failure(err error) error {
	<-u.done // the pipe fails only once the upload has stopped reading
	if u.err != nil {
		return u.k.uploadErr(u.err)
	}
	return err
}

// Complete ends the stream, waits for the store to complete the object,
// then writes its custody record (the bag's chain followed by a stored event
// naming the object: bucket, key, version, ETag, size, SHA-256) and tags it
// with the bag's digest and that record's head, which it returns.
func (u *upload) Complete(ctx context.Context, chain []custody.Entry, bag string) (string, error) {
	u.pw.Close() // EOF: the end of the object
	<-u.done
	if u.err != nil {
		return "", u.k.uploadErr(u.err)
	}
	k := u.k
	st, err := k.describe(ctx, u.out, u.n, "sha256:"+hex.EncodeToString(u.sum.Sum(nil)))
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
	head := custody.LineDigest(line)
	if err := k.tag(ctx, st.VersionID, bag, custody.Head(chain)); err != nil {
		return "", fmt.Errorf("the bundle is stored as %s with its custody record (head %s), but its tags are not: %w", k.loc, head, err)
	}
	return head, nil
}

// Abort abandons the stream; the transfer manager aborts the multipart
// upload (on a fresh context, so that an interrupted run still aborts it).
func (u *upload) Abort() {
	u.pw.CloseWithError(errAborted)
	<-u.done
}

// errAborted ends the stream of an abandoned bundle.
var errAborted = errors.New("the bundle was abandoned")

// tag sets the object's tags: the bag's digest and its own custody head.
func (k *Sink) tag(ctx context.Context, version, bag, head string) error {
	_, err := k.store.c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &k.loc.Bucket, Key: &k.loc.Key,
		VersionId: nonEmpty(version), Tagging: &s3types.Tagging{TagSet: []s3types.Tag{
			{Key: aws.String(MetaBag), Value: aws.String(bag)},
			{Key: aws.String(MetaCustodyHead), Value: aws.String(head)},
		}}})
	return classify(err, "tag", k.loc.String())
}

// errUploadEnded tells the writer the upload no longer reads.
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

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
