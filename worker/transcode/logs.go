//go:build cgo

package transcode

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/asticode/go-astiav"
)

var (
	logOnce sync.Once
	logMu   sync.Mutex
	avLog   *slog.Logger
	// lastAVError is libav's latest error line; probes add it to their reason
	// because libav's return codes ("Operation not permitted") say little.
	lastAVError []string
	// probing > 0 while encoders are probed: failures are expected then, so
	// libav's errors are logged at debug level.
	probing int
)

// routeLogs sends libav's log lines to l: errors as warnings, warnings and
// info at debug level, so libx264's statistics stay out of normal output.
func routeLogs(l *slog.Logger) {
	logMu.Lock()
	avLog = l.With("component", "libav")
	logMu.Unlock()
	logOnce.Do(func() {
		if os.Getenv("SVT_LOG") == "" {
			_ = os.Setenv("SVT_LOG", "1") // SVT-AV1 prints its banner to stderr otherwise
		}
		astiav.SetLogLevel(astiav.LogLevelInfo)
		astiav.SetLogCallback(func(c astiav.Classer, lvl astiav.LogLevel, _, msg string) {
			msg = strings.TrimSpace(msg)
			if msg == "" {
				return
			}
			level := slog.LevelDebug
			if lvl <= astiav.LogLevelError {
				level = slog.LevelWarn
			}
			logMu.Lock()
			l := avLog
			if lvl <= astiav.LogLevelError {
				if len(lastAVError) < 3 {
					lastAVError = append(lastAVError, msg)
				}
				if probing > 0 {
					level = slog.LevelDebug
				}
			}
			logMu.Unlock()
			if !l.Enabled(context.Background(), level) {
				return
			}
			src := ""
			if c != nil {
				if cl := c.Class(); cl != nil {
					src = cl.Name()
				}
			}
			l.Log(context.Background(), level, msg, "class", src)
		})
	})
}

// takeAVError returns and clears the libav error lines seen since the last call.
func takeAVError() string {
	logMu.Lock()
	defer logMu.Unlock()
	s := strings.Join(lastAVError, "; ")
	lastAVError = nil
	return s
}

// probeLogs marks the start of a probe; call the returned func at its end.
func probeLogs() func() {
	logMu.Lock()
	probing++
	logMu.Unlock()
	return func() {
		logMu.Lock()
		probing--
		logMu.Unlock()
	}
}
