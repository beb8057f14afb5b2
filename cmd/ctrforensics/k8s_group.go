package main

import (
	"context"
	"encoding/json"
	"errors"
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

// isPlugin tells whether arg0, the name this binary was run by, is that of
// the kubectl plugin.
func isPlugin(arg0 string) bool {
	if i := strings.LastIndexAny(arg0, `/\`); i >= 0 {
		arg0 = arg0[i+1:]
	}
	return strings.TrimSuffix(arg0, ".exe") == pluginName
}

// appFor is the command line's application: the kubectl plugin when the
// binary runs by its name, else ctrforensics.
func appFor(args []string, stdout, stderr io.Writer) *cli.Command {
	if len(args) > 0 && isPlugin(args[0]) {
		return newPluginApp(stdout, stderr)
	}
	return newApp(stdout, stderr)
}

// newPluginApp is the kubectl plugin, `kubectl ctrforensics`: the commands of
// `ctrforensics k8s` with kubectl's flags for the cluster (--kubeconfig,
// --context, -n as the pods' namespace) given anywhere, and none of
// containerd's, which mean nothing on a kubectl user's machine.
func newPluginApp(stdout, stderr io.Writer) *cli.Command {
	app := newApp(stdout, stderr)
	app.Name = "kubectl ctrforensics"
	app.Usage = "collect pods' containers across a Kubernetes cluster into object storage, sealed and hashed"
	app.Description = "The kubectl plugin of ctrforensics (this binary installed as kubectl-ctrforensics on PATH): one\n" +
		"short-lived collector pod per node collects the pods' containers read-only, each into a sealed\n" +
		"evidence bag in object storage. The cluster's flags go before or after the command, as kubectl's."
	app.Flags = kubeFlags()
	manifest := k8sManifestCommand()
	manifest.Before = refuseClusterFlags
	app.Commands = []*cli.Command{k8sCollectCommand(), manifest}
	app.EnableShellCompletion, app.ShellComplete, app.ConfigureShellCompletionCommand = false, nil, nil
	app.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error {
		return fmt.Errorf("%v (see `kubectl ctrforensics --help`)", err)
	}
	configure(app.Commands)
	return app
}

// refuseClusterFlags stops the plugin's manifest command, which asks nothing
// of a cluster, from ignoring a cluster flag given to it: -n in particular is
// not the collector pods' namespace.
func refuseClusterFlags(ctx context.Context, c *cli.Command) (context.Context, error) {
	for _, f := range []string{"kubeconfig", "context", "namespace"} {
		switch {
		case c.IsSet(f) && f == "namespace":
			return ctx, errors.New("manifest asks nothing of a cluster: -n does not apply (the collector pods' namespace is --collector-namespace)")
		case c.IsSet(f):
			return ctx, fmt.Errorf("manifest asks nothing of a cluster: --%s does not apply", f)
		}
	}
	return ctx, nil
}
