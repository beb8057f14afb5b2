package objstore

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Location
		ok   bool
	}{
		{"s3://evidence/cases/web.tar.gz", Location{"evidence", "cases/web.tar.gz"}, true},
		{"s3://evidence/web.tar", Location{"evidence", "web.tar"}, true},
		{"s3://evidence", Location{}, false},
		{"s3://evidence/", Location{}, false},
		{"s3:///key.tar", Location{}, false},
		{"s3://evidence/dir/", Location{}, false},
		{"/tmp/web.tar.gz", Location{}, false},
	} {
		got, err := ParseURL(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%q round-trips as %q", tc.in, got.String())
		}
	}
}

func TestParseRetention(t *testing.T) {
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		mode, until string
		want        *Retention
	}{
		{"governance", "2027-01-31", &Retention{"GOVERNANCE", time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)}},
		{"COMPLIANCE", "2027-01-31T12:00:00+02:00", &Retention{"COMPLIANCE", time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC)}},
		{"legal", "2027-01-31", nil},
		{"governance", "31/01/2027", nil},
		{"governance", "2026-11-29", nil}, // not in the future
	} {
		got, err := ParseRetention(tc.mode, tc.until, now)
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("ParseRetention(%q, %q) = %+v, want an error", tc.mode, tc.until, got)
		case tc.want != nil && (err != nil || *got != *tc.want):
			t.Errorf("ParseRetention(%q, %q) = %+v, %v; want %+v", tc.mode, tc.until, got, err, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	for _, tc := range []struct {
		err  error
		want Problem
	}{
		{api("InvalidAccessKeyId"), Credentials},
		{api("SignatureDoesNotMatch"), Credentials},
		{api("NoSuchBucket"), NoBucket},
		{api("AccessDenied"), Denied},
		{api("PreconditionFailed"), Exists},
		{fmt.Errorf("send: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), Unreachable},
		{errors.New("failed to retrieve credentials: no EC2 IMDS role found"), Credentials},
	} {
		var ae *AccessError
		if err := classify(tc.err, "upload to", "s3://b/k"); !errors.As(err, &ae) || ae.Problem != tc.want {
			t.Errorf("classify(%v) = %v, want problem %d", tc.err, err, tc.want)
		}
	}
	if err := classify(errors.New("other"), "upload to", "s3://b/k"); errors.As(err, new(*AccessError)) {
		t.Errorf("an unknown error was classified: %v", err)
	}
}
