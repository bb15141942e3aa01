/*
 * log.h - progress and diagnostics on stderr, JSON events on stdout.
 *
 * Every line that leaves dgmigrate (log, error, report) passes through
 * dgm_redact() first: secret values registered with dgm_log_add_secret()
 * are replaced by "****", so a password or a secret variable's value
 * cannot leak even through a child's error output. JSON is redacted value
 * by value (dgm_json_redacted in dgm/json.h), never as text.
 */
#ifndef DGM_LOG_H
#define DGM_LOG_H

#include <stdbool.h>

#include "dgm/buf.h"
#include "dgm/error.h"

typedef enum dgm_log_level {
	DGM_LOG_ERROR = 0,
	DGM_LOG_WARN = 1,
	DGM_LOG_INFO = 2,
	DGM_LOG_DEBUG = 3
} dgm_log_level;

/* Messages above level are dropped. Default DGM_LOG_INFO. */
void dgm_log_set_level(dgm_log_level level);
dgm_log_level dgm_log_get_level(void);
/* When on, dgm_event() writes one JSON object a line on stdout. */
void dgm_log_set_json(bool on);
bool dgm_log_json(void);

/* Also append every line, debug included, to this file (the run's log;
 * created 0600). NULL closes it. */
int dgm_log_set_file(const char *path, dgm_error *err);

void dgm_log(dgm_log_level level, const char *fmt, ...) DGM_PRINTF(2, 3);

/* Every warning is also kept (redacted, the first 100) for the run's
 * report: a fallback is never silent. Opening a run log clears them. */
size_t dgm_log_warnings(const char *const **out);
void dgm_log_warnings_clear(void);
#define dgm_error_log(...) dgm_log(DGM_LOG_ERROR, __VA_ARGS__)
#define dgm_warn(...) dgm_log(DGM_LOG_WARN, __VA_ARGS__)
#define dgm_info(...) dgm_log(DGM_LOG_INFO, __VA_ARGS__)
#define dgm_debug(...) dgm_log(DGM_LOG_DEBUG, __VA_ARGS__)

/* Progress of a long step: a bar redrawn in place when stderr is a
 * terminal, otherwise one line at each quarter. done == total ends it.
 * JSON mode adds a "progress" event at each quarter. Each step keeps its
 * own state (two steps run at once during a snapshot); unit is "MiB"
 * (done and total in bytes) or a word such as "tables". */
typedef struct dgm_progress_state {
	const char *label;
	const char *unit;
	int last_quarter;
	int last_width;
	bool lines;      /* never a bar: another step draws one at the same time */
} dgm_progress_state;

#define DGM_PROGRESS_INIT(label, unit) { label, unit, -1, -1, false }

void dgm_progress(dgm_progress_state *st, long long done, long long total);
/* dgm_progress for callbacks that take (done, total, payload), payload
 * a dgm_progress_state (dgm_archive_progress_fn). */
void dgm_progress_cb(long long done, long long total, void *state);

/* Print an error (and its hint) the way every command reports failure:
 *   dgmigrate: error: MESSAGE
 *   HINT: FIX                                                         */
void dgm_log_error_report(const dgm_error *err);

/* Emit a JSON event {"event": name, <fields_json>} on stdout when JSON
 * mode is on. fields_json is a comma-separated list of "key":value pairs
 * (may be NULL or ""); it is redacted like any other output. */
void dgm_event(const char *name, const char *fields_json);

/* Register a secret value (copied). Values shorter than 3 bytes are
 * ignored: replacing them would mangle ordinary text. */
void dgm_log_add_secret(const char *value);
void dgm_log_clear_secrets(void);
/* Secrets at least this long are masked wherever they appear; shorter
 * ones only where they stand alone, not inside a longer word (so "app"
 * never turns "application" into "****lication"). */
#define DGM_SECRET_ANYWHERE 8
/* Where s holds secret as dgm_redact() would mask it, or NULL. */
const char *dgm_secret_find(const char *s, const char *secret);
/* Replace every registered secret in s by "****"; result in out. */
void dgm_redact(const char *s, dgm_buf *out);

#endif
