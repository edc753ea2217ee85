// Command gw-ferretdb is a tiny launcher for an embedded FerretDB (MongoDB wire
// protocol) backed by SQLite, used as Gridwhistle's local document store.
//
// It exists because FerretDB's own command panics when built with `go install`
// (it expects a generated version file); the embeddable package does not.
//
// Build and run (normally done by `gridwhistle stack up`):
//
//	go build -o ../../../.state/bin/gw-ferretdb .
//	gw-ferretdb -listen 127.0.0.1:27017 -sqlite-dir .state/ferretdb/data
//
// SIGTERM or SIGINT stops it cleanly (listener closed, SQLite files synced).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP `address` to accept MongoDB wire connections on")
	sqliteDir := flag.String("sqlite-dir", "data", "`directory` holding the SQLite database files (created if missing)")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if err := run(logger, *listen, *sqliteDir); err != nil {
		logger.Error("gw-ferretdb failed", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger, listen, sqliteDir string) error {
	dir, err := filepath.Abs(sqliteDir)
	if err != nil {
		return fmt.Errorf("resolve -sqlite-dir: %w", err)
	}
	if err = os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create -sqlite-dir: %w", err)
	}

	// FerretDB wants a file: URI naming an existing directory, ending with a slash.
	sqliteURL := (&url.URL{Scheme: "file", Path: dir + string(filepath.Separator)}).String()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info(
		"gw-ferretdb listening",
		"listen", listen, "sqlite_url", sqliteURL, "pid", os.Getpid(), "ferretdb_version", ferretdbVersion(),
	)

	if err = f.Run(ctx); err != nil {
		return err
	}

	logger.Info("gw-ferretdb stopped")

	return nil
}

// ferretdbVersion reports the embedded FerretDB module version (the package itself says "unknown").
func ferretdbVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/FerretDB/FerretDB" {
				return dep.Version
			}
		}
	}

	return "unknown"
}
