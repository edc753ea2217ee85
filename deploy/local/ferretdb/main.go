// Command gw-ferretdb is a tiny launcher for an embedded FerretDB (MongoDB wire
// protocol) backed by PostgreSQL (default) or SQLite, used as Gridwhistle's local
// document store.
//
// It exists because FerretDB's own command panics when built with `go install`
// (it expects a generated version file); the embeddable package does not.
//
// The PostgreSQL backend is the default because it pushes filters down to SQL
// (per-key equality, `_id` through the primary key); the SQLite backend decodes
// every document of a collection for any filter but a bare `{_id: <string>}`.
//
// Build and run (normally done by `gridwhistle stack up`):
//
//	go build -o ../../../.state/bin/gw-ferretdb .
//	gw-ferretdb -listen 127.0.0.1:27017 -postgresql-url postgres://ferretdb@127.0.0.1:5433/ferretdb
//	gw-ferretdb -listen 127.0.0.1:27017 -handler sqlite -sqlite-dir .state/ferretdb/data
//
// SIGTERM or SIGINT stops it cleanly (listener closed, connections and files closed).
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
	var opts options
	flag.StringVar(&opts.listen, "listen", "127.0.0.1:27017", "TCP `address` to accept MongoDB wire connections on")
	flag.StringVar(&opts.handler, "handler", "postgresql", "storage `backend`: postgresql or sqlite")
	flag.StringVar(
		&opts.postgresqlURL, "postgresql-url", "postgres://ferretdb@127.0.0.1:5433/ferretdb",
		"PostgreSQL connection `URL` (postgresql handler)",
	)
	flag.StringVar(
		&opts.sqliteDir, "sqlite-dir", "data",
		"`directory` holding the SQLite database files, created if missing (sqlite handler)",
	)
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if err := run(logger, &opts); err != nil {
		logger.Error("gw-ferretdb failed", "error", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	listen        string
	handler       string
	postgresqlURL string
	sqliteDir     string
}

func run(logger *slog.Logger, opts *options) error {
	config := ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: opts.listen},
		Logger:   logger,
		Handler:  opts.handler,
	}

	// The storage location, for the start-up log line (no credentials: the URL's password is redacted).
	var storage string

	switch opts.handler {
	case "postgresql":
		u, err := url.Parse(opts.postgresqlURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-postgresql-url %q: want postgres://user@host:port/database", opts.postgresqlURL)
		}
		config.PostgreSQLURL = opts.postgresqlURL
		storage = u.Redacted()
	case "sqlite":
		dir, err := filepath.Abs(opts.sqliteDir)
		if err != nil {
			return fmt.Errorf("resolve -sqlite-dir: %w", err)
		}
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create -sqlite-dir: %w", err)
		}
		// FerretDB wants a file: URI naming an existing directory, ending with a slash.
		config.SQLiteURL = (&url.URL{Scheme: "file", Path: dir + string(filepath.Separator)}).String()
		storage = config.SQLiteURL
	default:
		return fmt.Errorf("-handler %q: want postgresql or sqlite", opts.handler)
	}

	f, err := ferretdb.New(&config)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info(
		"gw-ferretdb listening",
		"listen", opts.listen, "handler", opts.handler, "storage", storage,
		"pid", os.Getpid(), "ferretdb_version", ferretdbVersion(),
	)

	if opts.handler == "postgresql" {
		go maintainIDIndexes(ctx, logger, opts.postgresqlURL)
	}

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
