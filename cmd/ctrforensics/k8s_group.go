package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/forensic/objstore"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

// groupFlags are collect's flags for a bag that is one of a group: the
// Bag-Group-Identifier and the record of the cluster-wide run that collected
// it (what `k8s collect` gives each collector), and the JSON summary.
func groupFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bag-group", Usage: "`ID` of the group of bags this one belongs to (bag-info Bag-Group-Identifier)"},
		&cli.StringFlag{Name: "orchestration", Hidden: true, Usage: "`JSON` record of the cluster-wide run (set by `k8s collect`)"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "summary format: text or json (one object)"},
	}
}

// groupOptions adds the group flags to opts.
func groupOptions(c *cli.Command, opts *snapshot.CollectOptions) error {
	if err := checkOneLine(c, "bag-group"); err != nil {
		return err
	}
	if f := c.String("format"); f != "text" && f != "json" {
		return fmt.Errorf("--format %q: give text or json", f)
	}
	opts.BagGroup = c.String("bag-group")
	s := c.String("orchestration")
	if s == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var o bundle.Orchestration
	if err := dec.Decode(&o); err != nil {
		return fmt.Errorf("--orchestration is not an orchestration record: %v", err)
	}
	if o.Group != opts.BagGroup {
		return fmt.Errorf("--orchestration names bag group %q, --bag-group %q: give the same", o.Group, opts.BagGroup)
	}
	opts.Orchestration = &o
	return nil
}

// printCollectedJSON prints the summary of a sealed bag as one JSON object,
// with the stored object when the bag went to a bucket, and each note on
// errw.
func printCollectedJSON(w, errw io.Writer, res *snapshot.CollectResult, sink *objstore.Sink) error {
	acq := res.Acquisition
	notes := res.Notes
	if notes == nil {
		notes = []string{}
	}
	b, err := json.Marshal(collectedJSON{Container: acq.Container.ID, Output: res.Path, CustodyHead: res.Head, Signed: res.Signed,
		Changes: acq.Changes, DiffMethod: acq.DiffMethod, BagGroup: acq.BagGroup, Notes: notes, Stored: stored(sink)})
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(errw, "note: %s\n", n)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// stored is the object a sink stored, or nil.
func stored(sink *objstore.Sink) *custody.Stored {
	if sink == nil {
		return nil
	}
	return sink.Stored
}

// pluginName is the name kubectl runs this binary by as its plugin
// (`kubectl ctrforensics ...`).
const pluginName = "kubectl-ctrforensics"

// pluginArgs turns the command line of the kubectl plugin into that of
// `ctrforensics k8s`.
func pluginArgs(args []string) []string {
	if len(args) == 0 {
		return args
	}
	name := args[0]
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSuffix(name, ".exe")
	if name != pluginName {
		return args
	}
	return append([]string{args[0], "k8s"}, args[1:]...)
}
