/* read.c - the journal reader (include/dgm/journal.h). Pure: no output,
 * no globals, so the fuzz harness and `resume` share it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/journal.h"

#define WHY_LEN 200

/* Say what is wrong with a record (at most WHY_LEN bytes); -1. */
DGM_PRINTF(2, 3)
static int bad(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY_LEN, fmt, ap);
	va_end(ap);
	return -1;
}

static bool is_str(json_t *o, const char *key)
{
	return json_is_string(json_object_get(o, key));
}

/* Name the first required string field that is missing or not a string. */
static const char *missing_str(json_t *rec, const char *const *keys)
{
	for (; *keys; keys++)
		if (!is_str(rec, *keys))
			return *keys;
	return NULL;
}

static int check_common(json_t *rec, char *why)
{
	static const char *const keys[] = { "type", "ts", "run", NULL };
	const char *key;

	if (!json_is_object(rec))
		return bad(why, "not a JSON object");
	if ((key = missing_str(rec, keys)))
		return bad(why, "no string \"%s\"", key);
	if (!json_is_integer(json_object_get(rec, "seq")))
		return bad(why, "no integer \"seq\"");
	return 0;
}

static int check_facts(const dgm_journal_view *v, json_t *rec, char *why)
{
	static const char *const apply[] = { "commit_before", "branch_before", "tag_commit", NULL };
	static const char *const rollback[] = { "to", "commit_before", NULL };
	bool is_rollback = v->command && !strncmp(v->command, "rollback", 8);
	json_t *revs = json_object_get(rec, "revisions_before"), *x;
	const char *key;
	size_t i;

	if (v->facts)
		return bad(why, "a second facts record");
	if ((key = missing_str(rec, is_rollback ? rollback : apply)))
		return bad(why, "facts record without a string \"%s\"", key);
	if (is_rollback) {
		if (!json_is_boolean(json_object_get(rec, "restore")))
			return bad(why, "facts record without a boolean \"restore\"");
		return 0;
	}
	if (!json_is_array(revs))
		return bad(why, "facts record without an array \"revisions_before\"");
	json_array_foreach(revs, i, x)
		if (!json_is_string(x))
			return bad(why, "\"revisions_before\"[%zu] is not a string", i);
	return 0;
}

static int check_step(json_t *rec, char *why)
{
	const char *phase = json_string_value(json_object_get(rec, "phase"));
	json_t *data = json_object_get(rec, "data");

	if (!is_str(rec, "step"))
		return bad(why, "step record without a string \"step\"");
	if (!phase || (strcmp(phase, "start") && strcmp(phase, "done") && strcmp(phase, "failed")))
		return bad(why, "step record without a \"phase\" of start, done or failed");
	if (data && !json_is_object(data))
		return bad(why, "step record whose \"data\" is not an object");
	return 0;
}

/* Check one record against what came before it; *why says what is wrong. */
static int check_record(const dgm_journal_view *v, json_t *rec, char *why)
{
	const char *type;
	json_t *meta;

	if (check_common(rec, why))
		return -1;
	type = json_string_value(json_object_get(rec, "type"));
	if (!v->begin && strcmp(type, "begin"))
		return bad(why, "a '%.40s' record before the begin record", type);
	if (!strcmp(type, "begin")) {
		meta = json_object_get(rec, "meta");
		if (v->begin)
			return bad(why, "a second begin record");
		if (!is_str(rec, "command"))
			return bad(why, "begin record without a string \"command\"");
		if (meta && !json_is_object(meta))
			return bad(why, "begin record whose \"meta\" is not an object");
		return 0;
	}
	if (strcmp(json_string_value(json_object_get(rec, "run")), v->run))
		return bad(why, "a record of run '%.60s' in the journal of run '%.60s'",
			   json_string_value(json_object_get(rec, "run")), v->run);
	if (!strcmp(type, "facts"))
		return check_facts(v, rec, why);
	if (!strcmp(type, "step"))
		return check_step(rec, why);
	if (!strcmp(type, "end") && !is_str(rec, "outcome"))
		return bad(why, "end record without a string \"outcome\"");
	return 0;
}

/* Take a checked record into the view (rec: stolen). */
static void apply_record(dgm_journal_view *v, json_t *rec)
{
	const char *type = json_string_value(json_object_get(rec, "type"));
	long long seq = json_integer_value(json_object_get(rec, "seq"));

	json_array_append_new(v->records, rec);
	if (seq > v->seq)
		v->seq = seq;
	if (!strcmp(type, "begin")) {
		v->begin = rec;
		v->run = json_string_value(json_object_get(rec, "run"));
		v->command = json_string_value(json_object_get(rec, "command"));
		v->started_at = json_string_value(json_object_get(rec, "ts"));
	} else if (!strcmp(type, "facts"))
		v->facts = rec;
	else if (!strcmp(type, "end"))
		v->ended = true;
	else if (!strcmp(type, "step")) {
		const char *step = json_string_value(json_object_get(rec, "step"));
		json_t *phase = json_object_get(rec, "phase"), *data = json_object_get(rec, "data");

		json_object_set(v->phase, step, phase);
		if (!strcmp(json_string_value(phase), "done"))
			json_object_set_new(v->data, step, data ? json_incref(data)
								     : json_object());
	}
}

int dgm_journal_parse(dgm_journal_view *v, const char *text, size_t len, const char *name,
		      dgm_error *err)
{
	const char *p = text, *end = text + len;
	char why[WHY_LEN], first[WHY_LEN] = "";
	int lineno = 0;

	memset(v, 0, sizeof(*v));
	v->path = dgm_xstrdup(name);
	v->records = json_array();
	v->phase = json_object();
	v->data = json_object();
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		bool last = !nl || nl + 1 >= end;
		json_t *rec = n ? json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL) : NULL;

		lineno++;
		p += n + (nl ? 1 : 0);
		if (!rec && last) {
			/* A crash in the middle of the last write. */
			v->torn_line = lineno;
			break;
		}
		if (!rec)
			bad(why, "not JSON");
		if (!rec || check_record(v, rec, why)) {
			json_decref(rec);
			if (!v->bad_line) {
				v->bad_line = lineno;
				snprintf(first, sizeof(first), "%s", why);
			}
			continue;
		}
		apply_record(v, rec);
	}
	if (v->bad_line)
		return dgm_error_set(err, DGM_E_RUN, "%s:%d: damaged journal record (%s)", name,
				     v->bad_line, first);
	return 0;
}

static int read_file(const char *path, dgm_buf *out, dgm_error *err)
{
	FILE *f = fopen(path, "r");
	char chunk[8192];
	size_t n;
	int bad;

	if (!f)
		return dgm_error_errno(err, DGM_E_IO, "cannot read the journal '%s'", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		dgm_buf_put(out, chunk, n);
	bad = ferror(f);
	fclose(f);
	if (bad)
		return dgm_error_set(err, DGM_E_IO, "cannot read the journal '%s'", path);
	return 0;
}

int dgm_journal_load(dgm_journal_view *v, const char *path, dgm_error *err)
{
	dgm_buf text = DGM_BUF_INIT;
	int ret;

	memset(v, 0, sizeof(*v));
	if (read_file(path, &text, err)) {
		dgm_buf_free(&text);
		return -1;
	}
	ret = dgm_journal_parse(v, text.ptr ? text.ptr : "", text.len, path, err);
	dgm_buf_free(&text);
	return ret;
}

void dgm_journal_free(dgm_journal_view *v)
{
	free(v->path);
	json_decref(v->records);
	json_decref(v->phase);
	json_decref(v->data);
	memset(v, 0, sizeof(*v));
}

const char *dgm_journal_phase(const dgm_journal_view *v, const char *step)
{
	return v->phase ? json_string_value(json_object_get(v->phase, step)) : NULL;
}

json_t *dgm_journal_data(const dgm_journal_view *v, const char *step)
{
	return v->data ? json_object_get(v->data, step) : NULL;
}

const char *dgm_journal_fact(const dgm_journal_view *v, const char *key)
{
	return v->facts ? json_string_value(json_object_get(v->facts, key)) : NULL;
}
