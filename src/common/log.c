/* log.c - stderr diagnostics, stdout JSON events, secret redaction. */
#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgm/json.h"
#include "dgm/log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static dgm_log_level current_level = DGM_LOG_INFO;
static bool json_mode;
static FILE *log_file;
static char **secrets;
static size_t nsecrets;
static char **warnings;
static size_t nwarnings;

#define MAX_WARNINGS 100

void dgm_log_set_level(dgm_log_level level) { current_level = level; }
dgm_log_level dgm_log_get_level(void) { return current_level; }
void dgm_log_set_json(bool on) { json_mode = on; }
bool dgm_log_json(void) { return json_mode; }

void dgm_log_add_secret(const char *value)
{
	if (!value || strlen(value) < 3)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], value) == 0)
			return;
	secrets = dgm_xrealloc(secrets, (nsecrets + 1) * sizeof(*secrets));
	secrets[nsecrets++] = dgm_xstrdup(value);
}

void dgm_log_clear_secrets(void)
{
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Where secret occurs in s as it should be masked, or NULL. A short
 * secret (a setting-like word such as "app" or "true") is masked only
 * where it stands alone: inside a longer word it is not the value, and
 * masking it would mangle the word ("****lication"). Longer secrets
 * (passwords, tokens) are masked wherever they appear. */
static const char *find_secret(const char *start, const char *secret, size_t len)
{
	for (const char *p = strstr(start, secret); p; p = strstr(p + 1, secret)) {
		if (len >= DGM_SECRET_ANYWHERE)
			return p;
		if ((p == start || !word_char(p[-1]) || !word_char(p[0])) &&
		    (!word_char(p[len]) || !word_char(p[len - 1])))
			return p;
	}
	return NULL;
}

const char *dgm_secret_find(const char *s, const char *secret)
{
	return find_secret(s, secret, strlen(secret));
}

/* Find the earliest, then longest, secret occurrence in s. */
static const char *next_secret(const char *s, size_t *len)
{
	const char *best = NULL;

	*len = 0;
	for (size_t i = 0; i < nsecrets; i++) {
		size_t l = strlen(secrets[i]);
		const char *p = find_secret(s, secrets[i], l);

		if (p && (!best || p < best || (p == best && l > *len))) {
			best = p;
			*len = l;
		}
	}
	return best;
}

void dgm_redact(const char *s, dgm_buf *out)
{
	const char *p;
	size_t len;

	dgm_buf_clear(out);
	while ((p = next_secret(s, &len)) != NULL) {
		dgm_buf_put(out, s, (size_t)(p - s));
		dgm_buf_puts(out, "****");
		s = p + len;
	}
	dgm_buf_puts(out, s);
}

static void emit(FILE *f, const char *prefix, const char *text)
{
	dgm_buf red = DGM_BUF_INIT;

	dgm_redact(text, &red);
	fprintf(f, "%s%s\n", prefix, dgm_buf_cstr(&red));
	fflush(f);
	dgm_buf_free(&red);
}

void dgm_log_warnings_clear(void)
{
	for (size_t i = 0; i < nwarnings; i++)
		free(warnings[i]);
	free(warnings);
	warnings = NULL;
	nwarnings = 0;
}

size_t dgm_log_warnings(const char *const **out)
{
	*out = (const char *const *)warnings;
	return nwarnings;
}

/* Kept redacted, like every line that leaves dgmigrate. */
static void keep_warning(const char *text)
{
	dgm_buf red = DGM_BUF_INIT;

	if (nwarnings >= MAX_WARNINGS)
		return;
	dgm_redact(text, &red);
	warnings = dgm_xrealloc(warnings, (nwarnings + 1) * sizeof(*warnings));
	warnings[nwarnings++] = dgm_buf_detach(&red);
}

/* A JSON line is redacted value by value (dgm_json_redacted), never as
 * text: a secret equal to a literal (true, 0, null) or holding a quote
 * would otherwise break the line, or leak through its escaped form. */
static void emit_json(FILE *f, const char *text)
{
	json_t *j = json_loads(text, 0, NULL), *red = dgm_json_redacted(j);
	char *out = red ? json_dumps(red, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	if (out) {
		fprintf(f, "%s\n", out);
		fflush(f);
	} else
		emit(f, "", text);   /* not JSON: still never a secret */
	free(out);
	json_decref(red);
	json_decref(j);
}

int dgm_log_set_file(const char *path, dgm_error *err)
{
	int fd;

	if (log_file)
		fclose(log_file);
	log_file = NULL;
	if (!path)
		return 0;
	/* a new run log: a new run, whose report lists its own warnings */
	dgm_log_warnings_clear();
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || !(log_file = fdopen(fd, "a"))) {
		if (fd >= 0)
			close(fd);
		return dgm_error_errno(err, DGM_E_IO, "cannot open the run log '%s'", path);
	}
	return 0;
}

void dgm_log(dgm_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {
		"dgmigrate: error: ", "dgmigrate: warning: ", "", "debug: "
	};
	dgm_buf b = DGM_BUF_INIT;
	va_list ap;

	if (level > current_level && !log_file && level != DGM_LOG_WARN)
		return;
	va_start(ap, fmt);
	dgm_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* the dump of a copy-first apply logs from its own thread */
	pthread_mutex_lock(&log_lock);
	if (level == DGM_LOG_WARN)
		keep_warning(dgm_buf_cstr(&b));
	if (log_file)
		emit(log_file, prefix[level], dgm_buf_cstr(&b));
	if (level <= current_level)
		emit(stderr, prefix[level], dgm_buf_cstr(&b));
	pthread_mutex_unlock(&log_lock);
	dgm_buf_free(&b);
}

void dgm_progress(dgm_progress_state *st, long long done, long long total)
{
	bool mib = !strcmp(st->unit, "MiB");
	long long d = mib ? done >> 20 : done, t = mib ? total >> 20 : total;
	int pct = total > 0 ? (int)(done * 100 / total) : 100;

	if (pct > 100)
		pct = 100;
	if (current_level < DGM_LOG_INFO)
		return;
	if (!st->lines && isatty(2)) {
		int width = pct * 30 / 100;

		if (width == st->last_width && done < total)
			return;
		st->last_width = width;
		fprintf(stderr, "\r  %-12s [%-30.*s] %3d%% %lld/%lld %s%s", st->label, width,
			"##############################", pct, d, t, st->unit,
			done >= total ? "\n" : "");
		fflush(stderr);
		return;
	}
	if (pct / 25 > st->last_quarter) {
		char fields[200];

		st->last_quarter = pct / 25;
		dgm_info("  %s: %d%% (%lld of %lld %s)", st->label, pct, d, t, st->unit);
		snprintf(fields, sizeof(fields), "\"step\":\"%s\",\"done\":%lld,\"total\":%lld,"
			 "\"unit\":\"%s\"", st->label, done, total, mib ? "bytes" : st->unit);
		dgm_event("progress", fields);
	}
}

void dgm_log_error_report(const dgm_error *err)
{
	if (!err || err->code == DGM_OK)
		return;
	emit(stderr, "dgmigrate: error: ", err->msg[0] ? err->msg : dgm_error_name(err->code));
	if (err->hint[0])
		emit(stderr, "HINT: ", err->hint);
	if (json_mode) {
		dgm_buf f = DGM_BUF_INIT;

		dgm_buf_puts(&f, "\"kind\":");
		dgm_buf_json_str(&f, dgm_error_name(err->code));
		dgm_buf_puts(&f, ",\"message\":");
		dgm_buf_json_str(&f, err->msg);
		if (err->hint[0]) {
			dgm_buf_puts(&f, ",\"hint\":");
			dgm_buf_json_str(&f, err->hint);
		}
		dgm_buf_printf(&f, ",\"exit\":%d", dgm_error_exit_code(err));
		dgm_event("error", dgm_buf_cstr(&f));
		dgm_buf_free(&f);
	}
}

void dgm_event(const char *name, const char *fields_json)
{
	dgm_buf b = DGM_BUF_INIT;

	if (!json_mode)
		return;
	dgm_buf_puts(&b, "{\"event\":");
	dgm_buf_json_str(&b, name);
	if (fields_json && *fields_json) {
		dgm_buf_putc(&b, ',');
		dgm_buf_puts(&b, fields_json);
	}
	dgm_buf_putc(&b, '}');
	emit_json(stdout, dgm_buf_cstr(&b));
	dgm_buf_free(&b);
}

void dgm_progress_cb(long long done, long long total, void *state)
{
	dgm_progress(state, done, total);
}
