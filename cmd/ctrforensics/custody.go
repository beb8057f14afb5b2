package main

import (
	"context"

	"crypto/ed25519"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic"
	"github.com/ctrforensics/ctrforensics/forensic/attest"
	"github.com/ctrforensics/ctrforensics/forensic/bundle"
	"github.com/ctrforensics/ctrforensics/forensic/custody"
	"github.com/ctrforensics/ctrforensics/forensic/objstore"
	"github.com/ctrforensics/ctrforensics/internal/output"
)

func custodyCommand() *cli.Command {
	return &cli.Command{
		Name:  "custody",
		Usage: "show or extend a bundle's chain of custody",
		Commands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "append an event (transferred, received, analysed...) to the chain; no other file changes",
				ArgsUsage: "PATH",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "action", Usage: "what happened: transferred, received, analysed, ... (required)"},
					&cli.StringFlag{Name: "actor", Usage: "who did it (required)"},
					&cli.StringFlag{Name: "note", Usage: "free text"},
					&cli.StringFlag{Name: "sign-key", Usage: "ed25519 private key to sign the event with"},
				},
				Action: runCustodyAdd,
			},
			{
				Name:      "show",
				Usage:     "list the chain's events (of a bundle, or of an object s3://BUCKET/KEY with its stored event)",
				ArgsUsage: "PATH",
				Flags:     append([]cli.Flag{formatFlag()}, s3Flags()...),
				Action:    runCustodyShow,
			},
		},
	}
}

func runCustodyAdd(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "PATH")
	if err != nil {
		return err
	}
	if err := required(c, "action", "actor"); err != nil {
		return err
	}
	if objstore.IsURL(a[0]) {
		return fmt.Errorf("%s is write-once: its chain is extended where the bundle is kept; copy it out (e.g. aws s3 cp) and add events to the copy", a[0])
	}
	var key ed25519.PrivateKey
	if p := c.String("sign-key"); p != "" {
		if key, err = attest.LoadPrivateKey(p); err != nil {
			return err
		}
	}
	head, err := bundle.AddCustody(a[0], c.String("action"), c.String("actor"), c.String("note"), key)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Root().Writer, "appended %s by %s to %s\ncustody head: %s (record it: it protects this event)\n",
		c.String("action"), c.String("actor"), a[0], head)
	return nil
}

func runCustodyShow(ctx context.Context, c *cli.Command) error {
	a, err := args(c, "PATH")
	if err != nil {
		return err
	}
	format, err := output.ParseFormat(c.String("format"), output.Table, output.JSON)
	if err != nil {
		return err
	}
	chain, err := readCustody(ctx, c, a[0])
	if err != nil {
		return err
	}
	if format == output.JSON {
		for _, e := range chain {
			if _, err := c.Root().Writer.Write(e.Line); err != nil {
				return err
			}
		}
		return nil
	}
	t := output.NewTable(c.Root().Writer, "SEQ", "TIME", "ACTION", "ACTOR", "SIGNED", "NOTE")
	for _, e := range chain {
		signed := "no"
		if e.Sig != "" {
			signed = "key " + forensic.EscapePath(e.KeyID[:min(16, len(e.KeyID))])
		}
		t.Row(fmt.Sprint(e.Seq), forensic.EscapePath(e.Time), forensic.EscapePath(e.Action), forensic.EscapePath(e.Actor),
			signed, forensic.EscapePath(eventNote(e.Event)))
	}
	return t.Flush()
}

// readCustody returns the chain of custody of the bundle at p: a local path,
// or an object (its custody record, with the stored event).
func readCustody(ctx context.Context, c *cli.Command, p string) ([]custody.Entry, error) {
	if !objstore.IsURL(p) {
		chain, _, err := bundle.ReadCustody(p)
		return chain, err
	}
	s, loc, err := openStore(ctx, c, p)
	if err != nil {
		return nil, err
	}
	return s.ReadCustody(ctx, loc)
}

// eventNote is an event's note; for a stored event, where the bag was stored.
func eventNote(e custody.Event) string {
	st := e.Stored
	if st == nil {
		return e.Note
	}
	note := fmt.Sprintf("%s version %s ETag %s %d bytes %s", st.URL, orNone(st.VersionID), st.ETag, st.Size, st.SHA256)
	if e.Note != "" {
		note = e.Note + "; " + note
	}
	return note
}
