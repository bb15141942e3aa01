/*
 * migrate.h - running the real alembic, and planning downgrades that
 * land exactly on a set of heads.
 */
#ifndef DGM_MIGRATE_H
#define DGM_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/alembic.h"
#include "dgm/buf.h"
#include "dgm/error.h"
#include "dgm/plan.h"

/* The database alembic must migrate, and one it must never reach. */
typedef struct dgm_migrate_target {
	const char *url;             /* holds the password: never printed */
	const char *forbidden;       /* NULL, or a URL alembic must not reach */
	const char *forbidden_label; /* "live database" */
} dgm_migrate_target;

/* Run `<alembic.command> -c <ini> [-x ARG]... <verb> <target> [--sql]`
 * in the ini's folder under app_dir (the repository work tree, or a tag
 * exported elsewhere), on t->url: DATABASE_URL is that URL, PGAPPNAME
 * marks alembic's sessions, PGOPTIONS carries the plan's lock_timeout
 * and statement_timeout, then the plan's alembic.env; alembic.env and
 * alembic.x have ${target.*} filled in from t->url. Output lines go to
 * the log (debug level; info with --verbose); with sql, stdout is kept
 * in sql_out. The step's timeout is plan->timeouts.migrate_ms.
 *
 * Without sql, alembic is first proven to connect to t->url (once per
 * database and folder, alembic_guard.c), and t->forbidden is fenced
 * while it runs: a refusal or a breach fails with DGM_E_RUN before
 * alembic changed anything, naming alembic.env and alembic.x. */
int dgm_migrate_alembic_at(const dgm_plan *plan, const dgm_migrate_target *t,
			   const char *app_dir, const char *verb, const char *target, bool sql,
			   dgm_buf *sql_out, dgm_error *err);

/* The revision the newest alembic run (not --sql) of this process said
 * it was running - B of "Running upgrade A -> B" or of "Running downgrade
 * B -> A" - into buf; "" before its first such line. Safe from any
 * thread (the rehearsal's lock sampler reads it). */
void dgm_migrate_running(char *buf, size_t len);

/* dgm_migrate_alembic_at on the plan's database. */
int dgm_migrate_alembic(const dgm_plan *plan, const char *app_dir, const char *verb,
			const char *target, bool sql, dgm_buf *sql_out, dgm_error *err);

/* The `alembic downgrade` targets, in order, that take alembic_version
 * from `current` to exactly `want` (both sets of revision ids) with the
 * graph s (which must know every current revision). One plain
 * `downgrade <want head>` is not always enough: a branch that forked
 * from a revision older than want's head stays applied, so it gets its
 * own `<branch head>@<fork point>` step. Every step is simulated with
 * Alembic's own rules first; a step that would remove an ancestor of
 * want is never planned. *targets is malloc'd (strings too). */
int dgm_migrate_plan_downgrade(char ***targets, size_t *n, const dgm_alembic_script *s,
			       char *const *current, size_t ncur, char *const *want,
			       size_t nwant, dgm_error *err);
void dgm_migrate_targets_free(char **targets, size_t n);

/* Whether two revision-id lists hold the same set. */
bool dgm_migrate_same_set(char *const *a, size_t na, char *const *b, size_t nb);

#endif
