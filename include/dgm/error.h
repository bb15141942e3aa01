/*
 * error.h - the one error-reporting pattern of dgmigrate.
 *
 * Every fallible function returns int: 0 on success, -1 on failure, and
 * fills the caller's dgm_error (always the last parameter) with a code
 * from the catalog below and a message that carries its context.
 * Callers clean up with `goto out` and pass the error up unchanged, or
 * add context with dgm_error_prefix().
 *
 * Messages follow pgBackRest's style: lowercase, no final period, names
 * in quotes; an optional hint tells the fix.
 */
#ifndef DGM_ERROR_H
#define DGM_ERROR_H

#include <stddef.h>

/* The catalog: each code maps to one process exit code (see
 * dgm_error_exit_code). */
typedef enum dgm_code {
	DGM_OK = 0,
	DGM_E_USAGE,      /* bad command line                      -> 2 */
	DGM_E_PLAN,       /* bad release plan or its environment   -> 2 */
	DGM_E_NOT_BUILT,  /* command not built yet                 -> 2 */
	DGM_E_LOCK,       /* another run holds the database lock   -> 3 */
	DGM_E_RUN,        /* a step of the run failed              -> 1 */
	DGM_E_IO,         /* file system                           -> 1 */
	DGM_E_NOMEM,      /* out of memory                         -> 1 */
	DGM_E_PG,         /* PostgreSQL                            -> 1 */
	DGM_E_GIT,        /* git repository                        -> 1 */
	DGM_E_ARCHIVE,    /* archive                               -> 1 */
	DGM_E_CHILD,      /* child process failed                  -> 1 */
	DGM_E_ALEMBIC     /* alembic revision graph                -> 1 */
} dgm_code;

#define DGM_ERROR_MSG_MAX 2048
#define DGM_ERROR_HINT_MAX 1024

typedef struct dgm_error {
	dgm_code code;
	char msg[DGM_ERROR_MSG_MAX];
	char hint[DGM_ERROR_HINT_MAX];
} dgm_error;

#define DGM_ERROR_INIT { DGM_OK, "", "" }

#if defined(__GNUC__)
#define DGM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DGM_PRINTF(a, b)
#endif

/* Set code and message; returns -1 so that `return dgm_error_set(...)`
 * reads naturally. A NULL err is allowed (the error is dropped). */
int dgm_error_set(dgm_error *err, dgm_code code, const char *fmt, ...)
	DGM_PRINTF(3, 4);

/* Like dgm_error_set, appending ": strerror(errno)". */
int dgm_error_errno(dgm_error *err, dgm_code code, const char *fmt, ...)
	DGM_PRINTF(3, 4);

/* Set the hint line (the fix the user should apply). */
void dgm_error_hint(dgm_error *err, const char *fmt, ...) DGM_PRINTF(2, 3);

/* Prepend context: "CONTEXT: old message". Keeps code and hint. */
void dgm_error_prefix(dgm_error *err, const char *fmt, ...) DGM_PRINTF(2, 3);

void dgm_error_clear(dgm_error *err);

/* Map the error's code to the process exit code of PRODUCT.md:
 * 0 success, 1 run failed, 2 usage or plan, 3 lock. */
int dgm_error_exit_code(const dgm_error *err);

/* Short lowercase name of a code, e.g. "plan error". */
const char *dgm_error_name(dgm_code code);

#endif
