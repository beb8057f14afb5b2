package main

import (
	"context"
	"strconv"
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
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		ctrs, err := cl.Containers(ctx, c.Bool("all-namespaces"))
		if err != nil {
			return err
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

func toContainerJSON(ctr *snapshot.Container) containerJSON {
	podNS, pod, name := ctr.Pod()
	labels := ctr.Info.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return containerJSON{
		Namespace: ctr.Namespace, ID: ctr.Info.ID, Image: ctr.Info.Image, Status: ctr.Status, Pid: ctr.Pid,
		Runtime: ctr.Info.Runtime.Name, Snapshotter: ctr.Info.Snapshotter, SnapshotKey: ctr.Info.SnapshotKey,
		ReadOnlyRootfs: ctr.ReadOnlyRootfs(), Created: forensic.FormatTime(ctr.Created()),
		PodNamespace: podNS, Pod: pod, ContainerName: name, Labels: labels,
	}
}

func lsTable(c *cli.Command, ctrs []*snapshot.Container) error {
	all := c.Bool("all-namespaces")
	headers := []string{"CONTAINER", "IMAGE", "STATUS", "SNAPSHOTTER", "RO-ROOTFS", "CREATED", "POD"}
	if all {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	t := output.NewTable(c.Root().Writer, headers...)
	for _, ctr := range ctrs {
		podNS, pod, name := ctr.Pod()
		podText := "-"
		if pod != "" {
			podText = podNS + "/" + pod + "/" + name
		}
		id := ctr.Info.ID
		if !c.Bool("no-trunc") {
			id = truncID(id)
		}
		row := []string{forensic.EscapePath(id), orDash(ctr.Info.Image), string(ctr.Status), orDash(ctr.Info.Snapshotter),
			strconv.FormatBool(ctr.ReadOnlyRootfs()), ctr.Created().Format(time.RFC3339), podText}
		if all {
			row = append([]string{ctr.Namespace}, row...)
		}
		t.Row(row...)
	}
	return t.Flush()
}

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
