package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ctrforensics/ctrforensics/forensic/bagit"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
)

// maxRecord bounds a custody record read from the store.
const maxRecord = 16 << 20

// object is a stored bundle as the store describes it.
type object struct {
	loc       Location
	versionID string
	etag      string
	size      int64
	checksum  string
	meta      map[string]string
	// tags are the object's tags; none when the store keeps none.
	tags map[string]string
	// record is the custody record's content; nil when there is none.
	record []byte
}

// head describes the object at loc and reads its custody record.
func (s *Store) head(ctx context.Context, op string, loc Location) (*object, error) {
	h, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.Bucket, Key: &loc.Key, ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		if perr := s.probe(ctx, op, loc); perr != nil {
			return nil, perr
		}
		return nil, classify(err, op, loc.String())
	}
	o := &object{loc: loc, versionID: aws.ToString(h.VersionId), etag: aws.ToString(h.ETag), size: aws.ToInt64(h.ContentLength),
		checksum: aws.ToString(h.ChecksumSHA256), meta: h.Metadata, tags: s.tags(ctx, loc, aws.ToString(h.VersionId))}
	rec := loc.record()
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &rec.Bucket, Key: &rec.Key})
	if err != nil {
		if p := problemOf(err); p == NoObject {
			return o, nil
		}
		return nil, classify(err, op, rec.String())
	}
	defer out.Body.Close()
	if o.record, err = io.ReadAll(io.LimitReader(out.Body, maxRecord)); err != nil {
		return nil, classify(err, op, rec.String())
	}
	return o, nil
}

// tags returns the tags of the object's version; a store that keeps none,
// or refuses to say, gives none: they are labels, the custody record is what
// verify checks.
func (s *Store) tags(ctx context.Context, loc Location, version string) map[string]string {
	out, err := s.c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &loc.Bucket, Key: &loc.Key, VersionId: nonEmpty(version)})
	if err != nil {
		return nil
	}
	tags := map[string]string{}
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags
}

// open returns a reader of the object's version that was described.
func (s *Store) open(ctx context.Context, o *object) (io.ReadCloser, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.loc.Bucket, Key: &o.loc.Key, VersionId: nonEmpty(o.versionID)})
	if err != nil {
		return nil, classify(err, "read", o.loc.String())
	}
	return out.Body, nil
}

// ReadCustody returns the chain of custody of the bundle stored at loc: its
// custody record when it has one, else the bag's own chain, read from the
// start of the object.
func (s *Store) ReadCustody(ctx context.Context, loc Location) ([]custody.Entry, error) {
	o, err := s.head(ctx, "read", loc)
	if err != nil {
		return nil, err
	}
	if o.record != nil {
		return custody.Read(bytes.NewReader(o.record))
	}
	rc, err := s.open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	chain, _, err := bundle.ReadCustodyStream(loc.String(), rc)
	return chain, err
}

// VerifyObject verifies the bundle stored at loc as bundle.Verify does,
// reading the object as a stream (twice only when the bag's layout needs a
// second pass) and never keeping a copy. The chain checked is the object's
// custody record, which must begin with the bag's own chain; its newest
// stored event naming this object must match it: bucket, key, version,
// ETag, size, SHA-256 of every byte read, and the store's checksum.
func (s *Store) VerifyObject(ctx context.Context, loc Location, opts bundle.VerifyOptions) (*bundle.Report, error) {
	o, err := s.head(ctx, "verify", loc)
	if err != nil {
		return nil, err
	}
	opts.Custody = o.record
	var last *digestReader
	open := func() (io.ReadCloser, error) {
		rc, err := s.open(ctx, o)
		if err != nil {
			return nil, err
		}
		last = &digestReader{rc: rc, h: sha256.New()}
		return last, nil
	}
	rep, err := bundle.VerifyStream(ctx, loc.String(), open, opts)
	if err != nil {
		return nil, err
	}
	if last != nil && last.err == nil {
		o.checkStored(rep, last.n, "sha256:"+hex.EncodeToString(last.h.Sum(nil)))
	} else {
		problem(rep, "the object could not be read to its end")
	}
	return rep, nil
}

// checkStored checks the object against its metadata and its newest stored
// event, adding problems to rep.
func (o *object) checkStored(rep *bundle.Report, size int64, digest string) {
	if b := o.tags[MetaBag]; b != "" && b != rep.Bag {
		problem(rep, fmt.Sprintf("the object's tag names bag %s, the bag's tag manifest is %s", b, rep.Bag))
	}
	if o.record == nil {
		if rk := o.meta[MetaCustodyRecord]; rk != "" {
			problem(rep, fmt.Sprintf("the custody record %s%s/%s that the object names is missing", Scheme, o.loc.Bucket, rk))
		}
		return
	}
	var st *custody.Stored
	for _, e := range rep.Custody {
		if e.Action == custody.ActionStored && e.Stored != nil && e.Stored.Bucket == o.loc.Bucket && e.Stored.Key == o.loc.Key {
			st = e.Stored
		}
	}
	if st == nil {
		problem(rep, "the custody record has no stored event naming this object")
		return
	}
	check := func(what, recorded, found string) {
		if recorded != found {
			problem(rep, fmt.Sprintf("the stored event records %s %q, the object has %q", what, recorded, found))
		}
	}
	check("SHA-256", st.SHA256, digest)
	check("size", fmt.Sprint(st.Size), fmt.Sprint(size))
	check("ETag", st.ETag, o.etag)
	check("version", st.VersionID, o.versionID)
	if o.checksum != "" {
		check("store checksum", st.ChecksumSHA256, o.checksum)
	}
}

// problem adds a problem about the stored object to rep.
func problem(rep *bundle.Report, detail string) {
	rep.Problems = append(rep.Problems, bagit.Problem{Path: custody.FileName, Check: "stored", Detail: detail})
}

// digestReader hashes what is read through it; Close reads the rest, so that
// the digest covers the whole object.
type digestReader struct {
	rc  io.ReadCloser
	h   hash.Hash
	n   int64
	err error
}

func (d *digestReader) Read(b []byte) (int, error) {
	n, err := d.rc.Read(b)
	d.h.Write(b[:n])
	d.n += int64(n)
	if err != nil && err != io.EOF {
		d.err = err
	}
	return n, err
}

func (d *digestReader) Close() error {
	if d.err == nil {
		io.Copy(io.Discard, d) // a read error is in d.err
	}
	return d.rc.Close()
}

// AbortLeft aborts the multipart uploads that a killed run, described by
// record (Sink.Record) and started at since, left unfinished: those to its
// object's key initiated since then (less a minute of clock skew). It returns
// the IDs of the uploads it aborted.
func AbortLeft(ctx context.Context, record string, since time.Time) ([]string, error) {
	var r uploadRecord
	if err := json.Unmarshal([]byte(record), &r); err != nil {
		return nil, fmt.Errorf("upload record %q: %w", record, err)
	}
	loc, err := ParseURL(r.URL)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, Config{Endpoint: r.Endpoint, PathStyle: r.PathStyle, Region: r.Region})
	if err != nil {
		return nil, err
	}
	var aborted []string
	in := &s3.ListMultipartUploadsInput{Bucket: &loc.Bucket, Prefix: &loc.Key}
	for {
		out, err := s.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, classify(err, "list uploads to", loc.String())
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) != loc.Key || aws.ToTime(u.Initiated).Before(since.Add(-time.Minute)) {
				continue
			}
			if _, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &loc.Bucket, Key: &loc.Key, UploadId: u.UploadId}); err != nil {
				return aborted, classify(err, "abort upload to", loc.String())
			}
			aborted = append(aborted, aws.ToString(u.UploadId))
		}
		if !aws.ToBool(out.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// URLOf returns the object URL of an upload record.
func URLOf(record string) string {
	var r uploadRecord
	if json.Unmarshal([]byte(record), &r) != nil {
		return ""
	}
	return r.URL
}
