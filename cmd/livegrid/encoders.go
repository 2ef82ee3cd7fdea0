package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/livegrid/livegrid/worker/transcode"
)

func runEncoders(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("encoders", "encoders [--log-level L]", stderr)
	log, err := parseWithLog(fs, logFlags(fs), args, stderr)
	if err != nil {
		return err
	}
	chain := &transcode.Chain{Log: log}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODEC\tKIND\tENCODER\tSTATUS\tREASON")
	for _, r := range chain.ProbeAll() {
		status := "usable"
		if !r.Usable {
			status = "unavailable"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Codec, r.Kind, r.Encoder, status, r.Reason)
	}
	return tw.Flush()
}
