package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func ownerCommand() *cli.Command {
	return &cli.Command{
		Name:      "owner",
		Usage:     "name the snapshot, containers, pods and images that own a path inside a snapshot directory",
		ArgsUsage: "PATH",
		Description: "PATH is inside a snapshotter's directory, as a host-level scan or an alert reports it, e.g.\n" +
			"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/123/fs/etc/passwd.\n" +
			"Works live (--address) and on a disk root (--root).",
		Flags:  []cli.Flag{formatFlag()},
		Action: runOwner,
	}
}

// ownerJSON is the JSON form of `owner`.
type ownerJSON struct {
	Path        string               `json:"path"`
	Within      string               `json:"path_in_snapshot"`
	Snapshotter string               `json:"snapshotter"`
	SnapshotID  string               `json:"snapshot_id"`
	Namespace   string               `json:"namespace"`
	Snapshot    string               `json:"snapshot"`
	Kind        string               `json:"kind"`
	Shared      bool                 `json:"shared"`
	Images      []ownerImageJSON     `json:"images"`
	Containers  []ownerContainerJSON `json:"containers"`
}

type ownerImageJSON struct {
	Name   string `json:"name"`
	Layer  int    `json:"layer"`
	Layers int    `json:"layers"`
}

type ownerContainerJSON struct {
	ID            string            `json:"id"`
	Image         string            `json:"image"`
	Status        string            `json:"status"`
	OwnLayer      bool              `json:"own_layer"`
	PodNamespace  string            `json:"pod_namespace,omitempty"`
	Pod           string            `json:"pod,omitempty"`
	ContainerName string            `json:"container_name,omitempty"`
	PodUID        string            `json:"pod_uid,omitempty"`
	PodLabels     map[string]string `json:"pod_labels,omitempty"`
	Labels        map[string]string `json:"labels"`
	Created       string            `json:"created"`
}

func runOwner(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "PATH")
	if err != nil {
		return err
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		o, err := cl.Owner(ctx, a[0])
		if err != nil {
			return err
		}
		if format == output.JSON {
			return output.JSONLines(c.Root().Writer, []ownerJSON{toOwnerJSON(o)})
		}
		return ownerTable(c, o)
	})
}

func toOwnerJSON(o *snapshot.Ownership) ownerJSON {
	j := ownerJSON{Path: o.Path, Within: o.Within, Snapshotter: o.Snapshotter, SnapshotID: o.SnapshotID,
		Namespace: o.Namespace, Snapshot: o.Snapshot, Kind: o.Kind, Shared: o.Shared(),
		Images: []ownerImageJSON{}, Containers: []ownerContainerJSON{}}
	for _, img := range o.Images {
		j.Images = append(j.Images, ownerImageJSON(img))
	}
	for _, ctr := range o.Containers {
		p := ctr.Pod
		labels := ctr.Info.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		j.Containers = append(j.Containers, ownerContainerJSON{ID: ctr.Info.ID, Image: ctr.Info.Image,
			Status: string(ctr.Status), OwnLayer: ctr.Own, PodNamespace: p.Namespace, Pod: p.Name, ContainerName: p.Container, PodUID: p.UID, PodLabels: p.Labels,
			Labels: labels, Created: forensic.FormatTime(ctr.Created())})
	}
	return j
}

func ownerTable(c *cli.Command, o *snapshot.Ownership) error {
	w := c.Root().Writer
	within := o.Within
	if within == "" {
		within = "(outside the snapshot's filesystem)"
	}
	fmt.Fprintf(w, "path:        %s\n", forensic.EscapePath(o.Path))
	fmt.Fprintf(w, "snapshot:    %s %s (%s) %s in namespace %s\n", o.Snapshotter, o.SnapshotID, o.Kind, o.Snapshot, o.Namespace)
	fmt.Fprintf(w, "in snapshot: %s\n", forensic.EscapePath(within))
	var imgs []string
	for _, img := range o.Images {
		imgs = append(imgs, fmt.Sprintf("%s (layer %d of %d)", img.Name, img.Layer, img.Layers))
	}
	if len(imgs) == 0 {
		imgs = []string{"-"}
	}
	fmt.Fprintf(w, "images:      %s\n", strings.Join(imgs, ", "))
	if o.Shared() {
		fmt.Fprintf(w, "shared:      yes: an image layer, used by %d image(s) and %d container(s); the path belongs to each\n", len(o.Images), len(o.Containers))
	} else {
		fmt.Fprintln(w, "shared:      no")
	}
	if len(o.Containers) == 0 {
		fmt.Fprintln(w, "containers:  none")
		return nil
	}
	fmt.Fprintln(w)
	t := output.NewTable(w, "CONTAINER", "IMAGE", "STATUS", "LAYER", "POD")
	for _, ctr := range o.Containers {
		layer := "image layer"
		if ctr.Own {
			layer = "own writable layer"
		}
		podText := "-"
		if p := ctr.Pod; p.Name != "" {
			podText = forensic.EscapePath(p.Namespace + "/" + p.Name + "/" + p.Container)
			if p.Sandbox {
				podText += " (sandbox)"
			}
		}
		t.Row(ctr.Info.ID, ctr.Info.Image, string(ctr.Status), layer, podText)
	}
	return t.Flush()
}
