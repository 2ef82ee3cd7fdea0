package ingest

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/sirupsen/logrus"
)

// rtmpLogger gives go-rtmp, which logs through logrus, a logger that
// forwards to the connection's slog logger: the library's chatter at
// Debug, its errors (a connection ending badly) at Info.
func rtmpLogger(log *slog.Logger) *logrus.Logger {
	l := logrus.New()
	l.Out = io.Discard
	l.Formatter = nopFormatter{}
	l.Level = logrus.ErrorLevel
	if log.Enabled(context.Background(), slog.LevelDebug) {
		l.Level = logrus.InfoLevel
	}
	l.Hooks.Add(slogHook{log: log})
	return l
}

type nopFormatter struct{}

func (nopFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }

type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	if e.Level <= logrus.ErrorLevel {
		level = slog.LevelInfo
	}
	// go-rtmp prints errors with %+v: keep the first line, not the stack.
	msg, _, _ := strings.Cut(e.Message, "\n")
	h.log.Log(context.Background(), level, "go-rtmp: "+msg)
	return nil
}
