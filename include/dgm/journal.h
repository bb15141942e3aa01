/*
 * journal.h - reading a run's journal (one JSON record a line, written
 * by src/release/record.c) without trusting it: every field the reader
 * uses is checked for presence and type, a damaged record is reported
 * with its file and line, and only a torn LAST line (a crash in the
 * middle of a write) is tolerated.
 *
 * Records: every one has "seq" (integer), "ts" (string), "run" (string)
 * and "type" (string). By type:
 *   begin   "command" (string), "meta" (object, optional); first record
 *   facts   apply: "revisions_before" (array of strings), "commit_before",
 *           "branch_before", "tag_commit" (strings); rollback: "to",
 *           "commit_before" (strings), "restore" (boolean); at most one
 *   step    "step" (string), "phase" ("start", "done" or "failed"),
 *           "data" (object, optional; done records)
 *   end     "outcome" (string)
 *   other types (resume, ...) need only the common fields.
 */
#ifndef DGM_JOURNAL_H
#define DGM_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "dgm/error.h"

typedef struct dgm_journal_view {
	char *path;                   /* the file (or the name given to parse) */
	json_t *records;              /* every well-formed record, in order */
	json_t *begin, *facts;        /* borrowed from records; NULL when absent */
	json_t *phase;                /* step -> its last phase (string) */
	json_t *data;                 /* step -> data of its done record */
	const char *run, *command;    /* from the begin record; NULL when absent */
	const char *started_at;       /* the begin record's "ts" */
	long long seq;                /* highest seq seen */
	bool ended;                   /* an end record was read */
	int torn_line;                /* the torn last line ignored, 0 if none */
	int bad_line;                 /* the first damaged line, 0 if none */
} dgm_journal_view;

/* Parse a journal's text (len bytes; need not be NUL-terminated). name
 * is used in messages. Fails on the first damaged record or a journal
 * without a begin record (DGM_E_RUN, naming name:line); the view then
 * still holds every record read, before and after the damage (so a
 * caller can say what is known). Free the view in both cases. A journal
 * with no complete record at all (killed while it was being created)
 * parses to a view with begin == NULL and an empty records array. */
int dgm_journal_parse(dgm_journal_view *v, const char *text, size_t len, const char *name,
		      dgm_error *err);
/* Read and parse the file at path (as dgm_journal_parse). */
int dgm_journal_load(dgm_journal_view *v, const char *path, dgm_error *err);
void dgm_journal_free(dgm_journal_view *v);

/* The last phase recorded for step ("start", "done", "failed") or NULL. */
const char *dgm_journal_phase(const dgm_journal_view *v, const char *step);
/* The data object of step's done record, or NULL. */
json_t *dgm_journal_data(const dgm_journal_view *v, const char *step);
/* A string field of the facts record (validated), or NULL. */
const char *dgm_journal_fact(const dgm_journal_view *v, const char *key);

#endif
