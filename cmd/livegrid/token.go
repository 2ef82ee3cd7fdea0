package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/livegrid/livegrid/internal/auth"
)

const tokenSynopsis = `token sign --stream S [--ttl 1h] [--ip ADDR|CIDR] [--url http://edge:8080] [--secret S]

Prints a signed play URL for a stream: the token covers every playlist and
segment under /live/S/ until it expires. The secret comes from --secret or
LIVEGRID_TOKEN_SECRET and must match the edge's and origin's.`

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "sign" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(stderr, "Usage: livegrid %s\n", tokenSynopsis)
			return nil
		}
		fmt.Fprintf(stderr, "Usage: livegrid %s\n", tokenSynopsis)
		return errUsage
	}
	fs := newFlags("token sign", tokenSynopsis, stderr)
	stream := fs.String("stream", "", "stream name (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the URL stays valid")
	ip := fs.String("ip", "", "bind the URL to a client address or CIDR")
	base := fs.String("url", "http://localhost:8080", "edge or origin base URL (a path, if given, is kept)")
	secret := fs.String("secret", "", "signing secret (default: $LIVEGRID_TOKEN_SECRET)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *secret == "" {
		*secret = os.Getenv("LIVEGRID_TOKEN_SECRET")
	}
	if *secret == "" {
		return errors.New("'secret' is required: pass --secret or set LIVEGRID_TOKEN_SECRET")
	}
	if *stream == "" {
		return errors.New("'stream' is required")
	}
	u, err := auth.SignStreamURL(*secret, *base, *stream, *ttl, time.Now(), *ip)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, u)
	return nil
}
