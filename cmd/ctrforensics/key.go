package main

import (
	"context"

	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/ctrforensics/ctrforensics/forensic/attest"
)

func keyCommand() *cli.Command {
	return &cli.Command{
		Name:  "key",
		Usage: "manage signing keys",
		Commands: []*cli.Command{{
			Name:  "generate",
			Usage: "write a new ed25519 key pair: PREFIX.key (mode 0600) and PREFIX.pub",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Value: "ctrforensics", Usage: "path prefix of the two files"},
			},
			Action: func(ctx context.Context, c *cli.Command) error {
				if _, err := args(c); err != nil {
					return err
				}
				prefix := c.String("out")
				pub, err := attest.GenerateKey(prefix)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.Root().Writer, "private key: %s (keep it secret)\npublic key:  %s\nkey id:      %s\n",
					prefix+attest.PrivateKeySuffix, prefix+attest.PublicKeySuffix, attest.KeyID(pub))
				return nil
			},
		}},
	}
}
