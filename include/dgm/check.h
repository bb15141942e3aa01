/*
 * check.h - a list of checks reported together (validate, preflight):
 * each prints one line on stderr ("  ok    name: detail" or
 * "  FAIL  name: detail") and one JSON event; a failed list becomes one
 * error whose code is that of the most serious failure.
 */
#ifndef DGM_CHECK_H
#define DGM_CHECK_H

#include "dgm/error.h"

typedef struct dgm_checklist {
	int total;
	int failed;
	dgm_code code;          /* code of the first failure, by severity */
	char first[512];        /* first failure's message, for the summary */
} dgm_checklist;

#define DGM_CHECKLIST_INIT { 0, 0, DGM_OK, "" }

void dgm_check_ok(dgm_checklist *cl, const char *name, const char *fmt, ...)
	DGM_PRINTF(3, 4);
/* Record a failure from an error value (its message and hint). */
void dgm_check_fail(dgm_checklist *cl, const char *name, const dgm_error *e);
/* Record a skipped check (it depends on one that failed). */
void dgm_check_skip(dgm_checklist *cl, const char *name, const char *why);

/* 0 when nothing failed; otherwise -1 with err summarising the failures. */
int dgm_check_finish(const dgm_checklist *cl, const char *what, dgm_error *err);

#endif
