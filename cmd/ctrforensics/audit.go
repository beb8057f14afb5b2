package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic/audit"
	"github.com/ctrforensics/ctrforensics/forensic/finding"
	"github.com/ctrforensics/ctrforensics/internal/output"
	"github.com/ctrforensics/ctrforensics/internal/version"
	"github.com/ctrforensics/ctrforensics/snapshot"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:          "audit",
		Usage:         "check containers' OCI runtime specs: privileged, capabilities, host namespaces and mounts, seccomp...",
		ShellComplete: completeContainer,
		ArgsUsage:     "[CONTAINER...]",
		Description: "Without CONTAINER, audits every container of the namespace (-A: of every namespace), leaving out\n" +
			"Kubernetes pod sandboxes (--include-sandboxes). Reads containerd's records only. The rules are listed\n" +
			"in the README (CTRF-RT-001...).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all-namespaces", Aliases: []string{"A"}, Usage: "audit the containers of every namespace"},
			&cli.BoolFlag{Name: "include-sandboxes", Usage: "also audit Kubernetes pod sandbox (pause) containers"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, json (one object per finding) or sarif (SARIF 2.1.0)"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 1 when a finding at or above this severity exists: low, medium or high"},
		},
		Action: runAudit,
	}
}

func runAudit(ctx context.Context, c *cli.Command) error {
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON, "sarif")
	if err != nil {
		return err
	}
	var failOn finding.Severity
	if s := c.String("fail-on"); s != "" {
		if failOn, err = finding.ParseSeverity(s); err != nil {
			return fmt.Errorf("--fail-on: %w", err)
		}
	}
	ids := c.Args().Slice()
	if len(ids) > 0 && c.Bool("all-namespaces") {
		return fmt.Errorf("give CONTAINER arguments or -A, not both (see `%s --help`)", c.FullName())
	}
	opts := snapshot.AuditOptions{AllNamespaces: c.Bool("all-namespaces"), IncludeSandboxes: c.Bool("include-sandboxes")}
	return withClient(ctx, c, func(ctx context.Context, cl *snapshot.Client) error {
		res, err := cl.Audit(ctx, ids, opts)
		if err != nil {
			return err
		}
		for _, n := range res.Notes {
			fmt.Fprintln(c.Root().ErrWriter, "note: "+n)
		}
		switch format {
		case "sarif":
			err = audit.WriteSARIF(c.Root().Writer, version.Version, res.Reports)
		case output.JSON:
			err = output.JSONLines(c.Root().Writer, auditRows(res.Reports))
		default:
			err = writeAuditTable(c.Root().Writer, res, c.Bool("all-namespaces"))
		}
		if err != nil {
			return err
		}
		for _, r := range res.Reports {
			if failOn != 0 && audit.AtLeast(r.Findings, failOn) {
				return &findingsError{msg: fmt.Sprintf("findings at or above %s", failOn)}
			}
		}
		return nil
	})
}

// auditRow is one finding of `audit --format json`.
type auditRow struct {
	Namespace string `json:"namespace"`
	Container string `json:"container"`
	Pod       string `json:"pod,omitempty"`
	Rule      string `json:"rule"`
	Severity  string `json:"severity"`
	Title     string `json:"title"`
	Where     string `json:"where"`
	Reason    string `json:"reason"`
	Evidence  string `json:"evidence"`
}

func auditRows(reports []audit.Report) []auditRow {
	var rows []auditRow
	for _, r := range reports {
		for _, f := range r.Findings {
			rows = append(rows, auditRow{Namespace: r.Namespace, Container: r.ID, Pod: r.Pod, Rule: f.Rule,
				Severity: f.Severity.String(), Title: f.Title, Where: f.Where, Reason: f.Reason, Evidence: f.Evidence})
		}
	}
	return rows
}

// writeAuditTable prints a row per finding, then a summary line.
func writeAuditTable(w io.Writer, res *snapshot.AuditResult, allNamespaces bool) error {
	headers := []string{"CONTAINER", "SEVERITY", "RULE", "WHERE", "REASON"}
	if allNamespaces {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	t := output.NewTable(w, headers...)
	n := 0
	for _, r := range res.Reports {
		name := truncID(r.ID)
		if r.Pod != "" {
			name = r.Pod
		}
		for _, f := range r.Findings {
			row := []string{name, strings.ToUpper(f.Severity.String()), f.Rule, f.Where, f.Reason}
			if allNamespaces {
				row = append([]string{r.Namespace}, row...)
			}
			t.Row(row...)
			n++
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	summary := fmt.Sprintf("\n%d container(s) audited, %d finding(s)", len(res.Reports), n)
	if len(res.Skipped) > 0 {
		summary += fmt.Sprintf("; %d pod sandbox(es) left out (--include-sandboxes)", len(res.Skipped))
	}
	_, err := fmt.Fprintln(w, summary)
	return err
}
