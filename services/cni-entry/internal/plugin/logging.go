package plugin

import (
	"io"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"usrsp.dev/services/cni-entry/internal/config"
)

// Default log levels when logLevel is not set: stderr reaches the runtime's
// log (keep it quiet), the log file is for operators (keep what happened).
const (
	DefaultStderrLevel = zerolog.WarnLevel
	DefaultFileLevel   = zerolog.InfoLevel
)

// newLogger logs to stderr and, if logFile is set, to that file, each at
// logLevel or its own default. A log file that cannot be opened must not
// fail the network operation: that is reported on stderr instead.
func newLogger(stderr io.Writer, c *config.NetConf, verb string) (zerolog.Logger, func()) {
	stderrLevel, fileLevel := DefaultStderrLevel, DefaultFileLevel
	if c.LogLevel != "" {
		l, _ := zerolog.ParseLevel(c.LogLevel) // validated by LoadNetConf
		stderrLevel, fileLevel = l, l
	}
	writers := []io.Writer{filtered(stderr, stderrLevel)}
	closeFile := func() {}
	var openErr error
	if c.LogFile != "" {
		f, err := openLogFile(c.LogFile)
		if err != nil {
			openErr = err
		} else {
			writers = append(writers, filtered(f, fileLevel))
			closeFile = func() { _ = f.Close() }
		}
	}
	log := zerolog.New(zerolog.MultiLevelWriter(writers...)).With().Timestamp().
		Str("verb", verb).Logger()
	if openErr != nil {
		log.Warn().Err(openErr).Str("log_file", c.LogFile).Msg("cannot open logFile; logging to stderr only")
	}
	return log, closeFile
}

func filtered(w io.Writer, l zerolog.Level) io.Writer {
	return &zerolog.FilteredLevelWriter{Writer: zerolog.LevelWriterAdapter{Writer: w}, Level: l}
}

func openLogFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}
