package bench

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// ProgressStep is one update from a running suite.
type ProgressStep struct {
	Phase    string  // "prepare", "compare", "run"
	Sessions int     // of the run under way
	Done     int     // segments finished in this run
	Total    int     // segments this run will transcode
	Late     int     // of Done, how many were late
	Skipped  int     // segments a session gave up on (it fell too far behind)
	P99      float64 // p99 transcode ratio, once the run is done (Done == Total)
}

// Progress shows a suite's progress: a redrawn bar when its writer is a
// terminal, periodic log lines otherwise. It is safe for concurrent use.
type Progress struct {
	mu    sync.Mutex
	mode  string // bar, log or none
	w     io.Writer
	log   *slog.Logger
	every time.Duration
	now   func() time.Time
	last  time.Time
	drawn int // width of the bar line on screen; 0 when none
}

// NewProgress returns a display in mode "auto" (bar on a terminal, log
// otherwise), "bar", "log" or "none".
func NewProgress(mode string, w io.Writer, log *slog.Logger) (*Progress, error) {
	switch mode {
	case "auto":
		mode = "log"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	case "bar", "log", "none":
	default:
		return nil, fmt.Errorf("'progress' must be auto, bar, log or none, not %q", mode)
	}
	return &Progress{mode: mode, w: w, log: log, every: 5 * time.Second, now: time.Now}, nil
}

// Step shows s. Bar mode redraws at most ten times a second; log mode logs
// a line every five seconds and when a run finishes.
func (p *Progress) Step(s ProgressStep) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	finished := s.Total > 0 && s.Done+s.Skipped >= s.Total
	switch p.mode {
	case "bar":
		if !finished && s.Phase == "run" && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		line := barLine(s)
		pad := max(p.drawn-len([]rune(line)), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.drawn = len([]rune(line))
		if finished && s.P99 > 0 {
			// A run's final line stays on screen; the next run draws below it.
			fmt.Fprintln(p.w)
			p.drawn = 0
		}
	case "log":
		if p.log == nil || (!finished && s.Phase == "run" && now.Sub(p.last) < p.every) {
			return
		}
		if s.Phase != "run" {
			p.log.Info("bench " + s.Phase)
		} else {
			attrs := []any{"sessions", s.Sessions, "segments", fmt.Sprintf("%d/%d", s.Done, s.Total), "late", s.Late}
			if s.Skipped > 0 {
				attrs = append(attrs, "skipped", s.Skipped)
			}
			if finished {
				attrs = append(attrs, "p99", fmt.Sprintf("%.2f", s.P99))
			}
			p.log.Info("bench run", attrs...)
		}
	default:
		return
	}
	p.last = now
}

// Done ends the bar line so later output starts on a fresh line.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn > 0 {
		fmt.Fprintln(p.w)
		p.drawn = 0
	}
}

// barLine draws one progress line, like
// "[##########..........]  50%  4 sessions  20/40 segments  late 0".
func barLine(s ProgressStep) string {
	if s.Phase != "run" {
		return fmt.Sprintf("%s ...", s.Phase)
	}
	const width = 30
	frac := 0.0
	if s.Total > 0 {
		frac = min(float64(s.Done+s.Skipped)/float64(s.Total), 1)
	}
	n := int(frac * width)
	line := fmt.Sprintf("[%s%s] %3.0f%%  %d %s  %d/%d segments  late %d", strings.Repeat("#", n), strings.Repeat(".", width-n),
		frac*100, s.Sessions, plural(s.Sessions, "session"), s.Done, s.Total, s.Late)
	if s.Skipped > 0 {
		line += fmt.Sprintf("  skipped %d", s.Skipped)
	}
	if s.P99 > 0 {
		line += fmt.Sprintf("  p99 %.2f", s.P99)
	}
	return line
}

// ProgressUpdate is one update from a suite that measures for a set time
// rather than over a count of segments: the fan-out and latency suites.
type ProgressUpdate struct {
	Suite string  // "fanout", "latency": log lines read "bench <suite>"
	Frac  float64 // share of the run done, 0 to 1
	Text  string  // the status after the bar, like "18/20 viewers held  3.1 Mbit/s"
	Attrs []any   // the same status as slog key/value pairs, for log mode
	Final bool    // the run is over: the bar line stays, log mode logs at once
}

// Update shows u. Like Step, bar mode redraws at most ten times a second
// and log mode logs every five seconds, and a final update always shows.
func (p *Progress) Update(u ProgressUpdate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	switch p.mode {
	case "bar":
		if !u.Final && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		const width = 30
		frac := min(max(u.Frac, 0), 1)
		n := int(frac * width)
		line := fmt.Sprintf("[%s%s] %3.0f%%  %s", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, u.Text)
		pad := max(p.drawn-len([]rune(line)), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.drawn = len([]rune(line))
		if u.Final {
			fmt.Fprintln(p.w)
			p.drawn = 0
		}
	case "log":
		if p.log == nil || (!u.Final && now.Sub(p.last) < p.every) {
			return
		}
		p.log.Info("bench "+u.Suite, append([]any{"done", fmt.Sprintf("%.0f%%", min(max(u.Frac, 0), 1)*100)}, u.Attrs...)...)
	default:
		return
	}
	p.last = now
}
