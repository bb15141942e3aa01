/*
 * lock.h - one run at a time per database: a PostgreSQL advisory lock
 * held on a dedicated connection for the whole run. A killed run's lock
 * goes away with its connection, so there is never a stale lock to
 * clear by hand.
 */
#ifndef DGM_LOCK_H
#define DGM_LOCK_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "dgm/error.h"

typedef struct dgm_lock {
	PGconn *conn;     /* the connection that holds the lock */
} dgm_lock;

/* Take the lock for the database of url. wait_ms 0: fail at once with
 * DGM_E_LOCK (exit 3) naming the holder from pg_stat_activity; > 0: wait
 * up to that long. `what` describes this run ("apply", "rollback"). */
int dgm_lock_acquire(dgm_lock *lock, const char *url, const char *what, long wait_ms,
		     dgm_error *err);
/* Whether some session holds target's lock now (read from pg_locks
 * through conn, any database of the server; nothing is taken). */
int dgm_lock_is_held(bool *held, PGconn *conn, const char *target, dgm_error *err);
/* Release and close. NULL-safe, idempotent. */
void dgm_lock_release(dgm_lock *lock);

#endif
