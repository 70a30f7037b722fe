package logging

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Formats accepted by New.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// New returns a logger writing to stderr. level is debug, info or error.
func New(format, level string) (logr.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return logr.Discard(), fmt.Errorf("log level %q: %w", level, err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case FormatText:
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	case FormatJSON:
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		return logr.Discard(), fmt.Errorf("log format %q: want %s or %s", format, FormatText, FormatJSON)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zapr.NewLogger(zap.New(core)), nil
}
