//go:build !yara

package main

import (
	"errors"
	"io"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/scan"
)

// yaraMatcher says that this build has no YARA.
func yaraMatcher([]string, time.Duration, io.Writer) (scan.Matcher, []finding.Rule, error) {
	return nil, nil, errors.New("--rules needs the YARA build of ctrforensics: build it with `make build-yara`")
}
