package snapshot

import (
	"context"
	"fmt"

	"github.com/ctrforensics/ctrforensics/forensic/audit"
)

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
		if ctr.Pod.Sandbox && !opts.IncludeSandboxes && len(ids) == 0 {
			res.Skipped = append(res.Skipped, ctr.Namespace+"/"+ctr.Info.ID)
			continue
		}
		if ctr.Spec == nil {
			res.Notes = append(res.Notes, fmt.Sprintf("container %s in %s: its OCI spec could not be decoded: not audited", ctr.Info.ID, ctr.Namespace))
			continue
		}
		r := audit.Report{Namespace: ctr.Namespace, ID: ctr.Info.ID, Findings: audit.Check(ctr.Spec)}
		if p := ctr.Pod; p.Name != "" {
			name := p.Container
			if p.Sandbox {
				name = "(sandbox)"
			}
			r.Pod = p.Namespace + "/" + p.Name + "/" + name
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
