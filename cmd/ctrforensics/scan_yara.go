//go:build yara

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/forensic/scan"
	"github.com/ctrforensics/ctrforensics/forensic/scan/yara"
)

// yaraMatcher compiles the rules; files that do not compile are named on
// errw and left out.
func yaraMatcher(paths []string, timeout time.Duration, errw io.Writer) (scan.Matcher, []finding.Rule, error) {
	m, bad, err := yara.Load(paths, timeout)
	for _, b := range bad {
		fmt.Fprintf(errw, "ctrforensics: warning: YARA rules %s did not compile, left out: %s\n", b.File, b.Error())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--rules: %w (give YARA rules files or directories of .yar/.yara files)", err)
	}
	return m, m.Rules(), nil
}
