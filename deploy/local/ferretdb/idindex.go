package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// FerretDB v1.24's PostgreSQL backend looks documents up by `_jsonb->'_id' @> $1`, while the
// index it creates on `_id` is a btree on `_jsonb->'_id'`, which cannot serve `@>`: every
// lookup by _id scans its table (43 ms at 5,350 rows here). A GIN index with jsonb_path_ops
// on the same expression serves exactly that operator (0.04 ms). FerretDB creates tables on
// first use, so this loop adds the index to every collection table that lacks it.

const idIndexInterval = 2 * time.Second

const missingIDIndexes = `
SELECT c.table_schema, c.table_name
FROM information_schema.columns c
WHERE c.column_name = '_jsonb'
  AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (
    SELECT 1 FROM pg_indexes i
    WHERE i.schemaname = c.table_schema AND i.tablename = c.table_name
      AND i.indexname = left(c.table_name, 56) || '_gw_id'
  )`

// maintainIDIndexes runs until ctx is done; failures are logged and retried on the next tick.
func maintainIDIndexes(ctx context.Context, logger *slog.Logger, postgresqlURL string) {
	pool, err := pgxpool.New(ctx, postgresqlURL)
	if err != nil {
		logger.Warn("id index maintenance disabled", "error", err)
		return
	}
	defer pool.Close()

	ticker := time.NewTicker(idIndexInterval)
	defer ticker.Stop()

	for {
		addIDIndexes(ctx, logger, pool)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func addIDIndexes(ctx context.Context, logger *slog.Logger, pool *pgxpool.Pool) {
	rows, err := pool.Query(ctx, missingIDIndexes)
	if err != nil {
		logger.Debug("id index scan failed", "error", err)
		return
	}
	tables, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]string, error) {
		var t [2]string
		err := row.Scan(&t[0], &t[1])
		return t, err
	})
	if err != nil {
		logger.Debug("id index scan failed", "error", err)
		return
	}
	for _, t := range tables {
		name := t[1]
		if len(name) > 56 {
			name = name[:56]
		}
		sql := "CREATE INDEX IF NOT EXISTS " + pgx.Identifier{name + "_gw_id"}.Sanitize() +
			" ON " + pgx.Identifier{t[0], t[1]}.Sanitize() +
			" USING gin ((_jsonb->'_id') jsonb_path_ops)"
		if _, err := pool.Exec(ctx, sql); err != nil {
			// the table may have been dropped meanwhile (tests drop databases): try again next tick
			logger.Debug("id index not created", "schema", t[0], "table", t[1], "error", err)
			continue
		}
		logger.Debug("id index created", "schema", t[0], "table", t[1])
	}
}
