// Package objstore keeps evidence bundles in S3-compatible object storage:
// Sink streams a sealed bag to a bucket with a multipart upload (the packed
// archive is never a local file nor held whole in memory) and records where it
// went as a `stored` custody event; Store reads a stored bundle back as a
// stream (VerifyObject, ReadCustody) and aborts the uploads a killed run left
// (AbortLeft).
//
// Invariants: an object appears under its key only when the whole bag was
// sent and the store accepted every part's SHA-256 checksum (an upload that
// fails or is interrupted is aborted, so no part is left); an object is never
// replaced; the custody record KEY.custody.jsonl is written once, after the
// object, with the same retention, and begins with the bag's own chain.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// Scheme starts every object URL.
const Scheme = "s3://"

// CustodySuffix names an object's custody record: KEY + CustodySuffix.
const CustodySuffix = ".custody.jsonl"

// Metadata (x-amz-meta-*) and tag keys of a stored bundle. The metadata is
// fixed when the upload starts, before the bag's last byte exists; what is
// known only at its end is set as tags once the object is complete.
const (
	// MetaBag, a tag, is the digest of the bag's tagmanifest-sha256.txt.
	MetaBag = "ctrforensics-bag"
	// MetaCustodyHead, a tag, is the bag's own custody head when it was
	// stored.
	MetaCustodyHead = "ctrforensics-custody-head"
	// MetaCustodyRecord, metadata, is the key of the object's custody
	// record.
	MetaCustodyRecord = "ctrforensics-custody-record"
)

// IsURL reports whether s names an object (s3://BUCKET/KEY).
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// Location is an object in a bucket.
type Location struct {
	Bucket, Key string
}

// ParseURL parses s3://BUCKET/KEY.
func ParseURL(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	bucket, key, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		return Location{}, &URLError{URL: s}
	}
	return Location{Bucket: bucket, Key: key}, nil
}

// String returns the object's URL.
func (l Location) String() string { return Scheme + l.Bucket + "/" + l.Key }

// record is the location of the object's custody record.
func (l Location) record() Location { return Location{Bucket: l.Bucket, Key: l.Key + CustodySuffix} }

// URLError says a string is not an object URL.
type URLError struct{ URL string }

func (e *URLError) Error() string {
	return fmt.Sprintf("%q is not an object URL (s3://BUCKET/KEY)", e.URL)
}

// Config says how to reach the store. Credentials and the region come from
// the standard AWS chain (environment, shared config and profiles, web
// identity); the endpoint from Endpoint or AWS_ENDPOINT_URL(_S3).
type Config struct {
	// Endpoint is the store's URL (e.g. http://127.0.0.1:7070) for a store
	// other than AWS; empty uses the chain's.
	Endpoint string
	// PathStyle addresses buckets as ENDPOINT/BUCKET rather than as
	// BUCKET.ENDPOINT (most self-hosted stores need it).
	PathStyle bool
	// Region overrides the chain's region.
	Region string
}

// defaultRegion is used when neither Config nor the chain names a region
// (self-hosted stores accept any).
const defaultRegion = "us-east-1"

// Store is a connection to an S3-compatible store.
type Store struct {
	c   *s3.Client
	cfg Config
}

// Open prepares a connection to the store (no request is made).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	// The SDK's own log lines (IMDS fallbacks, retries) would break the
	// CLI's one-line errors: every failure is returned as an error.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Endpoint != "" {
		if u, err := url.Parse(cfg.Endpoint); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, &EndpointError{Endpoint: cfg.Endpoint}
		}
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if ac.Region == "" {
		ac.Region = defaultRegion
	}
	c := s3.NewFromConfig(ac, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// A ranged or unchecksummed GET is normal here (the whole
		// object's SHA-256 is checked by the reader): no log line on
		// stderr for it.
		o.DisableLogOutputChecksumValidationSkipped = true
		// A few retries, not the SDK's minutes of back-off against an
		// endpoint that is not there.
		o.RetryMaxAttempts = 3
	})
	return &Store{c: c, cfg: cfg}, nil
}

// Client is the store's S3 client.
func (s *Store) Client() *s3.Client { return s.c }

// EndpointError says an endpoint is not a URL.
type EndpointError struct{ Endpoint string }

func (e *EndpointError) Error() string {
	return fmt.Sprintf("endpoint %q is not a URL such as https://s3.example.net", e.Endpoint)
}

// Problem says why a store cannot be used.
type Problem int

// The problems an AccessError names.
const (
	// Unreachable: no answer from the endpoint.
	Unreachable Problem = iota + 1
	// Credentials: the store refused the credentials.
	Credentials
	// NoBucket: the bucket does not exist.
	NoBucket
	// Denied: the credentials may not do this.
	Denied
	// Exists: the object is already there.
	Exists
	// NoObject: the object is not there.
	NoObject
	// NoObjectLock: retention was asked for, but the bucket has no object
	// lock.
	NoObjectLock
)

// AccessError says a request to the store failed, and why.
type AccessError struct {
	Problem Problem
	// Op is what was tried ("upload", "read"...), URL the object or bucket.
	Op, URL string
	Err     error
}

func (e *AccessError) Error() string {
	var what string
	switch e.Problem {
	case Unreachable:
		what = "the store does not answer"
	case Credentials:
		what = "the store refused the credentials"
	case NoBucket:
		what = "no such bucket"
	case Denied:
		what = "access denied"
	case Exists:
		what = "the object already exists"
	case NoObject:
		what = "no such object"
	case NoObjectLock:
		what = "the bucket has no object lock"
	}
	if e.Err == nil {
		return fmt.Sprintf("%s %s: %s", e.Op, e.URL, what)
	}
	return fmt.Sprintf("%s %s: %s: %v", e.Op, e.URL, what, shortErr(e.Err))
}

func (e *AccessError) Unwrap() error { return e.Err }

// shortErr is the innermost useful message of an SDK error, which otherwise
// repeats the operation, the request ID and the retry count.
func shortErr(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	return err.Error()
}

// classify wraps err in an AccessError naming its problem, or returns it
// wrapped with op and where when it is none of them.
func classify(err error, op, where string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	p := problemOf(err)
	if p == 0 {
		return fmt.Errorf("%s %s: %w", op, where, err)
	}
	return &AccessError{Problem: p, Op: op, URL: where, Err: err}
}

func problemOf(err error) Problem {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidSecurity", "AuthorizationHeaderMalformed",
			"XAdminUserNotFound": // versitygw's InvalidAccessKeyId
			return Credentials
		case "NoSuchBucket":
			return NoBucket
		case "AccessDenied", "Forbidden":
			return Denied
		case "NoSuchKey", "NotFound":
			return NoObject
		case "PreconditionFailed":
			return Exists
		}
	}
	var nerr net.Error
	var operr *net.OpError
	var dnserr *net.DNSError
	if errors.As(err, &operr) || errors.As(err, &dnserr) || (errors.As(err, &nerr) && nerr.Timeout()) {
		return Unreachable
	}
	// No usable credentials anywhere in the chain (the SDK has no typed
	// error for it).
	if msg := err.Error(); strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "get credentials:") {
		return Credentials
	}
	return 0
}

// Retention is an object lock retention: the object can be neither deleted
// nor overwritten until Until (in governance mode, except by a user allowed
// to bypass it; in compliance mode, by nobody).
type Retention struct {
	Mode  string // "GOVERNANCE" or "COMPLIANCE"
	Until time.Time
}

// ParseRetention parses the mode (governance or compliance) and date (RFC
// 3339, or YYYY-MM-DD meaning its start in UTC) of a retention; the date must
// be in the future.
func ParseRetention(mode, until string, now time.Time) (*Retention, error) {
	r := &Retention{}
	switch strings.ToLower(mode) {
	case "governance":
		r.Mode = "GOVERNANCE"
	case "compliance":
		r.Mode = "COMPLIANCE"
	default:
		return nil, fmt.Errorf("object lock mode %q: want governance or compliance", mode)
	}
	t, err := time.Parse(time.RFC3339, until)
	if err != nil {
		if t, err = time.Parse(time.DateOnly, until); err != nil {
			return nil, fmt.Errorf("retention date %q: want YYYY-MM-DD or RFC 3339 (2027-01-31T00:00:00Z)", until)
		}
	}
	if !t.After(now) {
		return nil, fmt.Errorf("retention date %s is not in the future", t.UTC().Format(time.RFC3339))
	}
	r.Until = t.UTC()
	return r, nil
}
