// Command livegrid is the one binary of the livegrid live-streaming
// transcoding cluster; each role is a subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/livegrid/livegrid/worker/transcode"
)

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"transcode":   {"transcode a file or URL into an ABR ladder (HLS + DASH, CMAF)", runTranscode},
	"bench":       {"run a capacity-planning suite: transcode (density and knee), fanout (viewers per edge), latency (publish to playable)", runBench},
	"coordinator": {"run a cluster coordinator: ingest, scheduler, packager and origin (needs --redis-url, --store-url)", runCoordinator},
	"worker":      {"run a cluster transcode worker on a shared Redis and store (needs --redis-url, --store-url)", runWorker},
	"standalone":  {"run coordinator, one worker and the origin in one process (embedded Redis, file store)", runStandalone},
	"edge":        {"run an edge relay: cached, coalesced HLS/DASH with origin failover (needs --origin)", runEdge},
	"encoders":    {"list the encoder chain and whether each encoder is usable here", runEncoders},
	"token":       {"sign a play URL for a stream (token sign --stream S --ttl 1h)", runToken},
	"version":     {"print the version", runVersion},
}

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

func usage(w io.Writer) {
	fmt.Fprintf(w, "livegrid %s: live-streaming transcoding cluster\n\nUsage: livegrid <command> [flags]\n\nCommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'livegrid <command> --help' for a command's flags.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "livegrid: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "livegrid %s: %v\n", args[0], err)
		return 1
	}
}

// tuneScheduler lowers GOMAXPROCS for roles that mostly transcode, unless
// the user set GOMAXPROCS.
func tuneScheduler() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(transcode.SchedulerProcs(runtime.NumCPU()))
	}
}

// errUsage marks a flag error already reported by the flag set.
var errUsage = errors.New("usage")

// newFlags returns a flag set whose errors are returned, not fatal.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: livegrid %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	}
	return nil
}

// parseWithLog parses args and builds the logger its --log-* flags ask for.
func parseWithLog(fs *flag.FlagSet, newLog func(io.Writer) (*slog.Logger, error), args []string, w io.Writer) (*slog.Logger, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return newLog(w)
}

// logFlags adds --log-level and --log-format and returns a constructor.
func logFlags(fs *flag.FlagSet) func(w io.Writer) (*slog.Logger, error) {
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	return func(w io.Writer) (*slog.Logger, error) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			return nil, fmt.Errorf("'log-level' must be debug, info, warn or error, not %q", *level)
		}
		opts := &slog.HandlerOptions{Level: l}
		switch *format {
		case "text":
			return slog.New(slog.NewTextHandler(w, opts)), nil
		case "json":
			return slog.New(slog.NewJSONHandler(w, opts)), nil
		}
		return nil, fmt.Errorf("'log-format' must be text or json, not %q", *format)
	}
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "livegrid %s\n", version)
	return nil
}
