/*
 * pgbackrest.c - the plan's pgbackrest: section once the whole plan is
 * read: the defaults that depend on other keys, and the checks across
 * keys (snapshot.engine: pgbackrest needs the section; restore: cluster
 * needs server.stop and server.start), with FILE:LINE:COLUMN.
 */
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "internal.h"

static void argv_default(dgm_strlist *l, const char *prog)
{
	if (l->count)
		return;
	l->items = dgm_xcalloc(2, sizeof(*l->items));
	l->items[0] = dgm_xstrdup(prog);
	l->count = 1;
}

void dgm_plan_pgbr_defaults(dgm_plan *p)
{
	p->pgbackrest.archive_timeout_ms = 60000;
	p->pgbackrest.min_free_bytes = 1LL << 30;
}

void dgm_plan_pgbr_finish(dgm_plan *p)
{
	dgm_plan_pgbackrest *b = &p->pgbackrest;

	argv_default(&b->command, "pgbackrest");
	argv_default(&b->pg_ctl, "pg_ctl");
	if (!b->side_directory)
		b->side_directory = dgm_plan_path_join(p->state_dir, "pgbackrest-side");
}

static int at(const dgm_plan *p, const char *key, dgm_error *err)
{
	dgm_plan_error_at(p, key, err);
	return -1;
}

int dgm_plan_pgbr_check(const dgm_plan *p, dgm_error *err)
{
	const dgm_plan_pgbackrest *b = &p->pgbackrest;
	bool section = dgm_plan_where(p, "pgbackrest") != NULL;

	if (p->snapshot.engine == DGM_ENGINE_PGBACKREST && !section) {
		dgm_error_set(err, DGM_E_PLAN, "'snapshot.engine: pgbackrest' needs a 'pgbackrest' "
			      "section");
		dgm_error_hint(err, "add 'pgbackrest:' with at least 'stanza: <name>' (see "
			       "plans/example.yaml)");
		return at(p, "snapshot.engine", err);
	}
	if (section && p->snapshot.engine != DGM_ENGINE_PGBACKREST) {
		dgm_error_set(err, DGM_E_PLAN, "'pgbackrest' is given but snapshot.engine is "
			      "'dump': the section would be ignored");
		dgm_error_hint(err, "set 'snapshot.engine: pgbackrest', or remove the section");
		return at(p, "pgbackrest", err);
	}
	if (section && b->restore == DGM_PGBR_RESTORE_CLUSTER &&
	    (!b->server_stop.count || !b->server_start.count)) {
		dgm_error_set(err, DGM_E_PLAN, "'pgbackrest.restore: cluster' needs "
			      "'pgbackrest.server.stop' and 'pgbackrest.server.start'");
		dgm_error_hint(err, "give the commands that stop and start the server, e.g. "
			       "stop: [pg_ctlcluster, \"15\", main, stop]");
		return at(p, "pgbackrest.restore", err);
	}
	return 0;
}
