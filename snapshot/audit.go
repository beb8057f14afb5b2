package snapshot

import (
	"context"
	"fmt"

	"github.com/ctrforensics/ctrforensics/forensic/audit"
)

// labelCRIKind marks what the CRI plugin created: "sandbox" for a pod's
// sandbox (pause) container, "container" for the others.
const labelCRIKind = "io.cri-containerd.kind"

// IsSandboxLabelled tells whether the CRI plugin labelled the container as a
// pod's sandbox.
func (c *Container) IsSandboxLabelled() bool { return c.Info.Labels[labelCRIKind] == "sandbox" }

// AuditOptions tune Audit.
type AuditOptions struct {
	// AllNamespaces audits every namespace's containers (when no ID is given).
	AllNamespaces bool
	// IncludeSandboxes audits the pods' sandbox containers too.
	IncludeSandboxes bool
}

// AuditResult is the audit of the selected containers, in namespace and ID
// order.
type AuditResult struct {
	Reports []audit.Report
	// Skipped names the sandbox containers left out; Notes what could not be
	// audited.
	Skipped, Notes []string
}

// Audit checks the OCI runtime spec of the containers ids (IDs or unique
// prefixes, in the client's namespace), or of every container of the
// namespace (of every namespace with opts.AllNamespaces) when ids is empty.
// It reads containerd's records only.
func (c *Client) Audit(ctx context.Context, ids []string, opts AuditOptions) (*AuditResult, error) {
	ctrs, err := c.auditTargets(ctx, ids, opts.AllNamespaces)
	if err != nil {
		return nil, err
	}
	res := &AuditResult{}
	for _, ctr := range ctrs {
		if ctr.IsSandboxLabelled() && !opts.IncludeSandboxes && len(ids) == 0 {
			res.Skipped = append(res.Skipped, ctr.Namespace+"/"+ctr.Info.ID)
			continue
		}
		if ctr.Spec == nil {
			res.Notes = append(res.Notes, fmt.Sprintf("container %s in %s: its OCI spec could not be decoded: not audited", ctr.Info.ID, ctr.Namespace))
			continue
		}
		r := audit.Report{Namespace: ctr.Namespace, ID: ctr.Info.ID, Findings: audit.Check(ctr.Spec)}
		if ns, pod, name := ctr.Pod(); pod != "" {
			r.Pod = ns + "/" + pod + "/" + name
		}
		res.Reports = append(res.Reports, r)
	}
	return res, nil
}

func (c *Client) auditTargets(ctx context.Context, ids []string, all bool) ([]*Container, error) {
	if len(ids) == 0 {
		return c.Containers(ctx, all)
	}
	var out []*Container
	for _, id := range ids {
		ctr, err := c.LoadContainer(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, ctr)
	}
	return out, nil
}
