/*
 * dataloss.h - the one check every path that replaces the database with
 * a snapshot passes first (rollback --restore, rollback's fallback when
 * a downgrade fails, backups restore, apply's undo): which writes would
 * the restore throw away?
 *
 * A snapshot's "baseline" is the table write counters (pg_stat_user_
 * tables: n_tup_ins + n_tup_upd + n_tup_del, per table and table oid)
 * at the moment the database last was that snapshot plus only
 * dgmigrate's own changes: for an apply's snapshot, when the release
 * finished (after its postconditions, before hooks.after lets the
 * application in), so a data migration's own updates do not count; for
 * a safety or manual snapshot, when its run ended; after a restore of
 * it, when the restore ended. The baseline is the file writes.json in
 * the snapshot's folder, beside its manifest: outside the database, so
 * a restore cannot erase it, found from the snapshot alone, and pruned
 * with it. It is not part of the verified manifest: it is rewritten
 * each time the database becomes the snapshot again, and carries its
 * own HMAC (snapshot.h), checked with the snapshot's.
 *
 * Fail closed: with no baseline, a database replaced since (another
 * oid), statistics reset since, a server restarted since, counters off
 * or unreadable, or a counter that went backwards, the verdict is
 * "unknown", which needs --accept-data-loss like writes do.
 */
#ifndef DGM_DATALOSS_H
#define DGM_DATALOSS_H

#include <stdbool.h>

#include "dgm/error.h"
#include "dgm/plan.h"
#include "dgm/snapshot.h"

typedef enum dgm_dataloss_verdict {
	DGM_DATALOSS_NONE = 0,    /* no write since the baseline */
	DGM_DATALOSS_WRITES,      /* these tables were written since */
	DGM_DATALOSS_UNKNOWN      /* cannot know: treated like writes */
} dgm_dataloss_verdict;

typedef struct dgm_dataloss_table {
	char *name;               /* schema.table */
	long long writes;         /* rows inserted, updated or deleted since */
} dgm_dataloss_table;

typedef struct dgm_dataloss {
	dgm_dataloss_verdict verdict;
	char *snapshot;           /* the snapshot a restore would put back */
	bool of_release;          /* its baseline is the end of its release
				   * (pre-apply), else the snapshot itself */
	char *basis;              /* what the counters were compared with */
	char *why;                /* DGM_DATALOSS_UNKNOWN: why it cannot know */
	dgm_dataloss_table *tables;
	size_t ntables;
	long long total;
} dgm_dataloss;

typedef struct dgm_dataloss_opts {
	/* The snapshot was taken by the run that is undoing itself: with no
	 * baseline its release never finished, so every write since the
	 * snapshot is the release's own. */
	bool own_unfinished;
} dgm_dataloss_opts;

/* What restoring snap would throw away, compared with its baseline.
 * Never fails: what cannot be known is DGM_DATALOSS_UNKNOWN. */
void dgm_dataloss_check(dgm_dataloss *out, const dgm_plan *plan, const dgm_snapshot *snap,
			const dgm_dataloss_opts *o);

/* 0 when nothing would be lost or accept is set; else DGM_E_USAGE naming
 * the tables and counts (or why it cannot know) and both ways forward:
 * the restore with --accept-data-loss, or `instead`. */
int dgm_dataloss_gate(const dgm_dataloss *dl, bool accept, const char *instead,
		      dgm_error *err);

/* "public.organizations: 3 writes, public.users: 1 write", "unknown: WHY"
 * or "none". malloc'd. */
char *dgm_dataloss_summary(const dgm_dataloss *dl);

/* {"verdict", "snapshot", "basis", "why", "tables": {name: writes},
 * "total", "kept_in"} as JSON text; kept_in (may be NULL) is the safety
 * snapshot that still holds what the restore discards. malloc'd. */
char *dgm_dataloss_json(const dgm_dataloss *dl, const char *kept_in);

/* Record the counters now as the baseline of snap (run: the run that
 * records it, for the record). */
/* --accept-data-loss: warn and emit the "data_loss" event naming what a
 * restore discards and where it stays (kept_in may be NULL); returns the
 * event's JSON text (free it). */
char *dgm_dataloss_announce(const dgm_dataloss *dl, const char *kept_in);

int dgm_dataloss_mark(const dgm_plan *plan, const dgm_snapshot *snap, const char *run,
		      dgm_error *err);

void dgm_dataloss_free(dgm_dataloss *dl);

#endif
