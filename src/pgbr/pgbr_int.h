/* pgbr_int.h - what the files of src/pgbr/ share. */
#ifndef DGM_PGBR_INT_H
#define DGM_PGBR_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "dgm/fault.h"
#include "dgm/pgbackrest.h"

/* The journal of a restore: cluster (cluster_journal.c). */
typedef struct dgm_pgbr_cj {
	char *path;
	int fd;                   /* flock(LOCK_EX) held while open */
	json_t *begin;            /* the first record: what is restored */
	char state[16];           /* the last state reached: begin, stopped,
				   * restored, started, promoted */
} dgm_pgbr_cj;

char *dgm_pgbr_cj_path(const dgm_plan *plan);
/* Create it (it must not exist), lock it, write begin and fsync. */
int dgm_pgbr_cj_create(dgm_pgbr_cj *j, const dgm_plan *plan, json_t *begin, dgm_error *err);
/* Append a record and fsync it. */
int dgm_pgbr_cj_append(dgm_pgbr_cj *j, json_t *rec, dgm_error *err);
/* Record that state was reached; DGMIGRATE_FAULT_KILL_AT=cluster-<state>
 * kills right after. */
int dgm_pgbr_cj_reached(dgm_pgbr_cj *j, const char *state, dgm_error *err);
/* Open and lock an existing one (*found false: there is none); a live
 * holder of the lock fails with DGM_E_LOCK. */
int dgm_pgbr_cj_open(dgm_pgbr_cj *j, const dgm_plan *plan, bool *found, dgm_error *err);
int dgm_pgbr_cj_remove(dgm_pgbr_cj *j, const dgm_plan *plan, dgm_error *err);
void dgm_pgbr_cj_close(dgm_pgbr_cj *j);

/* "a b 'c d'": an argv as one line for messages and the dry run. */
char *dgm_pgbr_argv_text(const char *const *argv, size_t n);
/* The pgbackrest command line of cmd args for the plan, as text. */
char *dgm_pgbr_cmd_text(const dgm_plan *plan, const char *cmd, const char *const *args);

/* Databases of the cluster other than the plan's, postgres and templates. */
int dgm_pgbr_other_databases(int *n, PGconn *conn, dgm_error *err);

#endif
