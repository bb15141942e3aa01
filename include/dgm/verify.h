/*
 * verify.h - release verification: after `alembic upgrade`, check the
 * plan's postconditions on the database, run its hooks and poll its
 * health check (PRODUCT.md, "The release plan").
 *
 * Every check appends items to a dgm_verify_result: what was checked,
 * whether it held and the evidence, for the run report. Each item is
 * also printed when recorded ("  ok    NAME: EVIDENCE" or
 * "  FAIL  NAME: EVIDENCE" on stderr, a "verify" JSON event on stdout).
 * Names and evidence are redacted before they are stored, so a secret
 * in a hook's output cannot reach the report.
 */
#ifndef DGM_VERIFY_H
#define DGM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "dgm/error.h"
#include "dgm/plan.h"

/* One verified item, for the run report: what was checked, the result,
 * and the evidence ("index ix_x on prediction_history(model_id)"). */
typedef struct dgm_verify_item {
	char *name;       /* "table predictive_models", "fk fk_x validated", "health http://..." */
	bool ok;
	char *evidence;   /* what was seen */
} dgm_verify_item;

/* Items are appended: one result can collect the postconditions, the
 * hooks and the health check of a run. Start from DGM_VERIFY_RESULT_INIT
 * (or zeroed memory); release with dgm_verify_result_free. */
typedef struct dgm_verify_result {
	dgm_verify_item *items;
	size_t count;
	size_t failed;
} dgm_verify_result;

#define DGM_VERIFY_RESULT_INIT { NULL, 0, 0 }

/* Check the plan's postconditions on an open connection: every table
 * exists (schema-qualified or via search_path), every index exists, and,
 * when foreign_keys_validated, every foreign key ON those tables (and
 * referencing them) has pg_constraint.convalidated; then ANALYZE those
 * tables when analyze is set. All items are checked (not stopping at the
 * first failure); returns -1 with a DGM_E_RUN error summarising the
 * failures ("postconditions failed: table 'x' does not exist; ...") when
 * any failed. expected_revs (n) are the Alembic heads alembic_version must
 * hold exactly (compare as sets); pass NULL/0 to skip that item.
 *
 * The checks read the catalogs only, so a session holding a lock on a
 * table cannot make them wait. ANALYZE runs only when every check held
 * (after a failure the run is about to stop or roll back, and ANALYZE of
 * large tables takes time); on an idle connection it runs in its own
 * transaction with plan->timeouts.lock_ms as lock_timeout, and an
 * ANALYZE that fails (lock timeout) is one more failed item. A query
 * that fails otherwise (connection lost) is a DGM_E_PG error, at once.
 * res may be NULL (items are then only printed). */
int dgm_verify_postconditions(dgm_verify_result *res, PGconn *conn, const dgm_plan *plan,
			      char *const *expected_revs, size_t n, dgm_error *err);

/* Run hooks in order (argv, never a shell; cwd = the plan's repository;
 * each with its timeout or plan->timeouts.hook_ms), output streamed to the
 * log at debug level (and the last lines kept for the error). Stops at the
 * first failure: DGM_E_RUN "hook 'maintenance-on' failed: ...".
 * which ("before", "after") names the list in messages. A hook timeout
 * of 0 means no limit. */
int dgm_verify_run_hooks(dgm_verify_result *res, const dgm_plan *plan,
			 const dgm_plan_hooks *hooks, const char *which, dgm_error *err);

/* GET plan->health_check.url until it answers 2xx: up to retries tries,
 * interval between, overall deadline timeout_ms; the last status or
 * transport error in the message. No-op (0) when no URL is set.
 * Redirects are followed (http and https only, at most 5). The URL is
 * shown without its user info and query string, which may hold tokens.
 * A timeout_ms of 0 means no overall deadline (each try then gives up
 * after 30 s). Stops early, with an error, when dgm_run_interrupted is
 * set. */
int dgm_verify_health(dgm_verify_result *res, const dgm_plan *plan, dgm_error *err);

void dgm_verify_result_free(dgm_verify_result *res);

/* ---- helpers, exported for the tests ---------------------------------- */

/* Record one item (name and evidence are redacted and copied) and print
 * it. res may be NULL: the item is only printed. */
void dgm_verify_add(dgm_verify_result *res, const char *name, bool ok, const char *fmt, ...)
	DGM_PRINTF(4, 5);

/* The URL fit for logs: user info ("user:pw@"), query string and
 * fragment removed. "http://u:p@h:8/api/health?token=x" gives
 * "http://h:8/api/health". malloc'd. */
char *dgm_verify_url_redact(const char *url);

/* Whether a (na) and b (nb) hold the same strings, in any order
 * (duplicates count once). */
bool dgm_verify_same_set(char *const *a, size_t na, char *const *b, size_t nb);

#endif
