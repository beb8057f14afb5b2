package main

import (
	"context"

	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/objstore"
	"github.com/ctrforensics/ctrforensics/internal/output"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check an evidence bundle: completeness, every digest, Payload-Oxum, image blobs, signature, custody",
		ArgsUsage: "PATH",
		Description: "PATH is a bundle directory, .tar or .tar.gz; a tar is read as a stream, never extracted.\n" +
			"PATH may be an object, s3://BUCKET/KEY.tar.gz: it is streamed from the store, never copied, and\n" +
			"checked against its stored custody event (KEY.tar.gz.custody.jsonl).\n" +
			"Exit 0 when every check holds, 1 when any fails (each failing file is named), 2 when PATH cannot be read.",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "pubkey", Usage: "trusted ed25519 public key, one per examiner (repeat the flag): the signature and every custody event must verify with one"},
			&cli.BoolFlag{Name: "allow-unsigned-custody", Usage: "with --pubkey, accept unsigned custody events and report each as unprotected"},
			&cli.StringFlag{Name: "custody-head", Usage: "the custody head digest you recorded: the chain must end there"},
			formatFlag(),
		}, s3Flags()...),
		Action: runVerify,
	}
}

func runVerify(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "PATH")
	if err != nil {
		return err
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	opts := bundle.VerifyOptions{CustodyHead: c.String("custody-head"), AllowUnsignedCustody: c.Bool("allow-unsigned-custody")}
	for _, p := range c.StringSlice("pubkey") {
		k, err := attest.LoadPublicKey(p)
		if err != nil {
			return err
		}
		opts.Keys = append(opts.Keys, k)
	}
	rep, err := verifyBundle(ctx, c, a[0], opts)
	if err != nil {
		return err
	}
	if format == output.JSON {
		err = writeReportJSON(c.Root().Writer, rep)
	} else {
		writeReport(c.Root().Writer, rep)
	}
	if err != nil {
		return err
	}
	if !rep.Valid() {
		return &findingsError{msg: fmt.Sprintf("%s is INVALID: %d problem(s)", a[0], len(rep.Problems))}
	}
	return nil
}

// verifyBundle verifies the bundle at p: a local path, or an object.
func verifyBundle(ctx context.Context, c *cli.Command, p string, opts bundle.VerifyOptions) (*bundle.Report, error) {
	if objstore.IsURL(p) {
		s, loc, err := openStore(ctx, c, p)
		if err != nil {
			return nil, err
		}
		rep, err := s.VerifyObject(ctx, loc, opts)
		if err != nil {
			return nil, fmt.Errorf("cannot read bundle: %w", err)
		}
		return rep, nil
	}
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("cannot read bundle: %w", err)
	}
	rep, err := bundle.Verify(ctx, p, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot read bundle %s: %w", p, err)
	}
	return rep, nil
}

func writeReport(w io.Writer, rep *bundle.Report) {
	algs := make([]string, len(rep.Algorithms))
	for i, a := range rep.Algorithms {
		algs[i] = string(a)
	}
	fmt.Fprintf(w, "bundle:    %s\n", rep.Path)
	fmt.Fprintf(w, "payload:   %d files, %s; manifests: %s\n", rep.PayloadFiles, units.BytesSize(float64(rep.PayloadBytes)), strings.Join(algs, ", "))
	esc := forensic.EscapePath
	if a := rep.Acquisition; a != nil {
		fmt.Fprintf(w, "acquired:  container %s (%s) on %s by %s at %s, case %q\n", esc(a.Container.ID), esc(a.Container.Image),
			esc(a.Host.Hostname), esc(a.CollectedBy), esc(a.CollectedAt), a.Case)
	}
	fmt.Fprintf(w, "signature: %s\n", rep.Signature)
	fmt.Fprintf(w, "custody:   %d event(s), head %s\n", len(rep.Custody), rep.Head)
	unprotected := map[int]bool{}
	for _, seq := range rep.Unprotected {
		unprotected[seq] = true
	}
	for i, e := range rep.Custody {
		signed := ""
		switch {
		case unprotected[i+1]:
			signed = " (UNPROTECTED: unsigned)"
		case e.Sig != "":
			signed = " (signed)"
		}
		fmt.Fprintf(w, "  %d  %s  %-12s %s%s\n", e.Seq, esc(e.Time), esc(e.Action), esc(e.Actor), signed)
		if e.Stored != nil {
			fmt.Fprintf(w, "     %s\n", esc(eventNote(e.Event)))
		}
	}
	for _, p := range rep.Problems {
		name := p.Path
		if name == "" {
			name = "(bundle)"
		}
		fmt.Fprintf(w, "FAIL %s: %s: %s\n", esc(name), p.Check, esc(p.Detail))
	}
	if rep.Valid() {
		fmt.Fprintln(w, "result:    VALID")
	} else {
		fmt.Fprintf(w, "result:    INVALID (%d problems)\n", len(rep.Problems))
	}
}

func writeReportJSON(w io.Writer, rep *bundle.Report) error {
	type problem struct {
		Path   string `json:"path"`
		Check  string `json:"check"`
		Detail string `json:"detail"`
	}
	out := struct {
		Path         string              `json:"path"`
		Valid        bool                `json:"valid"`
		Problems     []problem           `json:"problems"`
		Signature    string              `json:"signature"`
		CustodyHead  string              `json:"custody_head"`
		Custody      []json.RawMessage   `json:"custody"`
		Unprotected  []int               `json:"unprotected_custody_events"`
		PayloadFiles int64               `json:"payload_files"`
		PayloadBytes int64               `json:"payload_bytes"`
		Acquisition  *bundle.Acquisition `json:"acquisition"`
	}{Path: rep.Path, Valid: rep.Valid(), Problems: []problem{}, Signature: rep.Signature, CustodyHead: rep.Head,
		Custody: []json.RawMessage{}, Unprotected: append([]int{}, rep.Unprotected...), PayloadFiles: rep.PayloadFiles, PayloadBytes: rep.PayloadBytes, Acquisition: rep.Acquisition}
	for _, p := range rep.Problems {
		out.Problems = append(out.Problems, problem{p.Path, p.Check, p.Detail})
	}
	for _, e := range rep.Custody {
		out.Custody = append(out.Custody, json.RawMessage(strings.TrimSpace(string(e.Line))))
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
