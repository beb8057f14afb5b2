package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Aliases:   []string{"containers"},
		Usage:     "list containers with their task state, snapshotter and pod",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "list the containers of every namespace"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "show whole container IDs (the table shows their first 12 characters)"},
			&cli.BoolFlag{Name: "all", Usage: "include the pods' sandbox (pause) containers"},
			&cli.StringFlag{Name: "pod", Usage: "only the containers of Kubernetes pods named `NAME`"},
			&cli.StringFlag{Name: "pod-namespace", Usage: "only the containers of pods in Kubernetes namespace `NS`"},
			&cli.StringSliceFlag{Name: "label", Usage: "only containers with label `KEY=VALUE` on the container or its pod (repeat: all must match)"},
			&cli.BoolFlag{Name: "exclude-system", Usage: "leave out kube-system and the usual node agents' pods (see README)"},
			formatFlag(),
		},
		Action: runLs,
	}
}

func runLs(ctx context.Context, c *cli.Command) error {
	if _, err := args(c); err != nil {
		return err
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	filter, err := lsFilter(c)
	if err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		ctrs, err := cl.Containers(ctx, c.Bool("all-namespaces"))
		if err != nil {
			return err
		}
		ctrs = filter.Filter(ctrs)
		if len(ctrs) == 0 && (filter.Pod != "" || filter.PodNamespace != "") && !c.Bool("all-namespaces") && cl.Namespace() != criNamespace {
			fmt.Fprintf(c.Root().ErrWriter, "note: no pod's container in namespace %s; Kubernetes pods are in %s (-n %s)\n",
				cl.Namespace(), criNamespace, criNamespace)
		}
		if format == output.JSON {
			rows := make([]containerJSON, len(ctrs))
			for i, ctr := range ctrs {
				rows[i] = toContainerJSON(ctr)
			}
			return output.JSONLines(c.Root().Writer, rows)
		}
		return lsTable(c, ctrs)
	})
}

// lsFilter turns the filter flags into a snapshot.ContainerFilter.
func lsFilter(c *cli.Command) (snapshot.ContainerFilter, error) {
	f := snapshot.ContainerFilter{
		Sandboxes: c.Bool("all"), Pod: c.String("pod"), PodNamespace: c.String("pod-namespace"),
		ExcludeSystem: c.Bool("exclude-system"),
	}
	for _, l := range c.StringSlice("label") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return f, fmt.Errorf("--label %q is not KEY=VALUE (e.g. --label app=web)", l)
		}
		if f.Labels == nil {
			f.Labels = map[string]string{}
		}
		f.Labels[k] = v
	}
	return f, nil
}

func toContainerJSON(ctr *snapshot.Container) containerJSON {
	p := ctr.Pod
	labels := ctr.Info.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return containerJSON{
		Namespace: ctr.Namespace, ID: ctr.Info.ID, Image: ctr.Info.Image, Status: ctr.Status, Pid: ctr.Pid,
		Runtime: ctr.Info.Runtime.Name, Snapshotter: ctr.Info.Snapshotter, SnapshotKey: ctr.Info.SnapshotKey,
		ReadOnlyRootfs: ctr.ReadOnlyRootfs(), Created: forensic.FormatTime(ctr.Created()),
		PodNamespace: p.Namespace, Pod: p.Name, ContainerName: p.Container, PodUID: p.UID, SandboxID: p.SandboxID,
		Sandbox: p.Sandbox, PodLabels: p.Labels, Labels: labels,
	}
}

func lsTable(c *cli.Command, ctrs []*snapshot.Container) error {
	all := c.Bool("all-namespaces")
	headers := []string{"CONTAINER", "IMAGE", "STATUS", "SNAPSHOTTER", "RO-ROOTFS", "CREATED", "POD-NAMESPACE", "POD", "NAME"}
	if all {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	t := output.NewTable(c.Root().Writer, headers...)
	for _, ctr := range ctrs {
		id := ctr.Info.ID
		if !c.Bool("no-trunc") {
			id = truncID(id)
		}
		p := ctr.Pod
		name := orDash(forensic.EscapePath(p.Container))
		if p.Sandbox {
			name = sandboxMark
		}
		row := []string{forensic.EscapePath(id), orDash(ctr.Info.Image), string(ctr.Status), orDash(ctr.Info.Snapshotter),
			strconv.FormatBool(ctr.ReadOnlyRootfs()), ctr.Created().Format(time.RFC3339),
			orDash(forensic.EscapePath(p.Namespace)), orDash(forensic.EscapePath(p.Name)), name}
		if all {
			row = append([]string{ctr.Namespace}, row...)
		}
		t.Row(row...)
	}
	return t.Flush()
}

// criNamespace is the containerd namespace of the CRI plugin's pods.
const criNamespace = "k8s.io"

// sandboxMark is the NAME of a pod's sandbox (pause) container in the ls
// table: Kubernetes container names cannot hold parentheses.
const sandboxMark = "(sandbox)"

// shortID is how many characters of a container ID the ls table shows, as
// docker and nerdctl do: enough to pass as a unique prefix.
const shortID = 12

// truncID shortens a container ID to shortID characters.
func truncID(id string) string {
	if len(id) <= shortID {
		return id
	}
	return id[:shortID]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
