/*
 * history.h - dgmigrate's own table in the application's database: one
 * row a run (`dgmigrate history`). A restore carries its rows over into
 * the database it puts back (src/snapshot/restore_props.c).
 */
#ifndef DGM_HISTORY_H
#define DGM_HISTORY_H

#define DGM_HISTORY_DDL \
	"CREATE SCHEMA IF NOT EXISTS dgmigrate;" \
	"CREATE TABLE IF NOT EXISTS dgmigrate.runs (run_id text PRIMARY KEY, command text NOT NULL," \
	" release text, tag text, commit_before text, commit_after text," \
	" revisions_before text[], revisions_after text[], snapshot_id text, snapshot_sha256 text," \
	" outcome text NOT NULL, reason text, db_user text DEFAULT current_user, host text," \
	" started_at timestamptz, finished_at timestamptz DEFAULT now(), report jsonb)"

#include <libpq-fe.h>

#include "dgm/error.h"

/* The rows of dgmigrate.runs in the database of conn, as one JSON array
 * ("[]" when the table does not exist yet); *json is the caller's. */
int dgm_history_rows(char **json, PGconn *conn, dgm_error *err);

#endif
