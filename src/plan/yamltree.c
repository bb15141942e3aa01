/*
 * yamltree.c - read libyaml's events into a small node tree that keeps
 * each node's line and column, so the schema walk can point at the
 * exact place of every error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "dgm/buf.h"
#include "internal.h"

/* The schema is five levels deep; anything far deeper is not a plan,
 * and the limit keeps the recursion off the end of the stack. */
#define MAX_DEPTH 32

typedef struct yreader {
	yaml_parser_t parser;
	const char *name;
	const char *text;
	size_t len;
	dgm_error *err;
} yreader;

static int fail_at(yreader *r, yaml_mark_t mark, const char *fmt, ...) DGM_PRINTF(3, 4);

static int fail_at(yreader *r, yaml_mark_t mark, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return dgm_error_set(r->err, DGM_E_PLAN, "%s:%zu:%zu: %s", r->name, mark.line + 1,
			     mark.column + 1, msg);
}

/* Does line `line` (0-based) of the text hold a tab? libyaml's message
 * for tab indentation does not say "tab", so the hint has to. */
static bool line_has_tab(const yreader *r, size_t line)
{
	size_t i = 0;

	for (size_t l = 0; l < line && i < r->len; i++)
		if (r->text[i] == '\n')
			l++;
	for (; i < r->len && r->text[i] != '\n'; i++)
		if (r->text[i] == '\t')
			return true;
	return false;
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset,
 * not a mark: count lines up to it. */
static int reader_error(yreader *r)
{
	size_t off = r->parser.problem_offset, line = 1, col = 1;

	for (size_t i = 0; i < off && i < r->len; i++) {
		col++;
		if (r->text[i] == '\n') {
			line++;
			col = 1;
		}
	}
	dgm_error_set(r->err, DGM_E_PLAN, "%s:%zu:%zu: invalid YAML: %s", r->name, line, col,
		      r->parser.problem ? r->parser.problem : "unreadable input");
	dgm_error_hint(r->err, "save the plan as UTF-8 text without control characters");
	return -1;
}

static int syntax_error(yreader *r)
{
	const yaml_parser_t *p = &r->parser;
	char ctx[256] = "";

	if (p->error == YAML_MEMORY_ERROR)
		return dgm_error_set(r->err, DGM_E_NOMEM, "%s: out of memory reading the plan",
				     r->name);
	if (p->error == YAML_READER_ERROR)
		return reader_error(r);
	if (p->context)
		snprintf(ctx, sizeof(ctx), " (%s at line %zu, column %zu)", p->context,
			 p->context_mark.line + 1, p->context_mark.column + 1);
	dgm_error_set(r->err, DGM_E_PLAN, "%s:%zu:%zu: invalid YAML: %s%s", r->name,
		      p->problem_mark.line + 1, p->problem_mark.column + 1,
		      p->problem ? p->problem : "syntax error", ctx);
	if (line_has_tab(r, p->problem_mark.line))
		dgm_error_hint(r->err, "YAML does not allow tabs for indentation: use spaces");
	else
		dgm_error_hint(r->err, "check the indentation, the ':' after each key and the "
			       "quotes around values near that line");
	return -1;
}

static int next_event(yreader *r, yaml_event_t *ev)
{
	if (yaml_parser_parse(&r->parser, ev))
		return 0;
	return syntax_error(r);
}

static dgm_ynode *new_node(dgm_ykind kind, yaml_mark_t mark)
{
	dgm_ynode *n = dgm_xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->line = (int)mark.line + 1;
	n->column = (int)mark.column + 1;
	return n;
}

static void add_kid(dgm_ynode *parent, dgm_ynode *kid)
{
	parent->kids = dgm_xrealloc(parent->kids, (parent->n + 1) * sizeof(*parent->kids));
	parent->kids[parent->n++] = kid;
}

static int build(yreader *r, yaml_event_t *ev, int depth, dgm_ynode **out);

static int scalar(yreader *r, yaml_event_t *ev, dgm_ynode **out)
{
	const char *value = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	dgm_ynode *n;

	/* A "\0" escape would silently cut the value short in C. */
	if (memchr(value, '\0', len)) {
		fail_at(r, ev->start_mark, "values must not contain NUL characters");
		dgm_error_hint(r->err, "remove the \\0 escape from the value");
		return -1;
	}
	n = new_node(DGM_Y_SCALAR, ev->start_mark);
	n->text = dgm_xstrndup(value, len);
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	*out = n;
	return 0;
}

static int collection(yreader *r, yaml_event_t *ev, int depth, dgm_ynode **out)
{
	bool is_map = ev->type == YAML_MAPPING_START_EVENT;
	yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	dgm_ynode *n = new_node(is_map ? DGM_Y_MAP : DGM_Y_SEQ, ev->start_mark);

	if (depth > MAX_DEPTH) {
		dgm_plan_ynode_free(n);
		fail_at(r, ev->start_mark, "the plan nests deeper than %d levels", MAX_DEPTH);
		dgm_error_hint(r->err, "a plan is a few levels deep; check the brackets and the "
			       "indentation");
		return -1;
	}
	for (;;) {
		yaml_event_t kid_ev;
		dgm_ynode *kid;
		int rc;

		if (next_event(r, &kid_ev))
			goto fail;
		if (kid_ev.type == end) {
			yaml_event_delete(&kid_ev);
			break;
		}
		if (is_map && n->n % 2 == 0 && kid_ev.type != YAML_SCALAR_EVENT) {
			fail_at(r, kid_ev.start_mark, "keys must be plain names, not lists or mappings");
			dgm_error_hint(r->err, "write keys as plain words such as 'release'");
			yaml_event_delete(&kid_ev);
			goto fail;
		}
		rc = build(r, &kid_ev, depth + 1, &kid);
		yaml_event_delete(&kid_ev);
		if (rc)
			goto fail;
		add_kid(n, kid);
	}
	*out = n;
	return 0;
fail:
	dgm_plan_ynode_free(n);
	return -1;
}

/* Build the node that starts with ev (the caller deletes ev). */
static int build(yreader *r, yaml_event_t *ev, int depth, dgm_ynode **out)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return scalar(r, ev, out);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return collection(r, ev, depth, out);
	case YAML_ALIAS_EVENT:
		fail_at(r, ev->start_mark, "YAML aliases ('*%s') are not supported in plans",
			(const char *)ev->data.alias.anchor);
		dgm_error_hint(r->err, "write the value out again instead of referring to an anchor");
		return -1;
	default:
		fail_at(r, ev->start_mark, "unexpected YAML event");
		dgm_error_hint(r->err, "this is a bug in dgmigrate's plan reader; please report it");
		return -1;
	}
}

static int empty_plan(yreader *r)
{
	dgm_error_set(r->err, DGM_E_PLAN, "%s:1:1: plan is empty", r->name);
	dgm_error_hint(r->err, "start from plans/example.yaml, which documents every key");
	return -1;
}

/* After the stream start: one document, then the end of the stream. */
static int document(yreader *r, dgm_ynode **root)
{
	yaml_event_t ev;
	int rc;

	if (next_event(r, &ev))
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return empty_plan(r);
	}
	yaml_event_delete(&ev); /* document start */
	if (next_event(r, &ev))
		return -1;
	rc = build(r, &ev, 0, root);
	yaml_event_delete(&ev);
	if (rc)
		return -1;
	if (next_event(r, &ev)) /* document end */
		return -1;
	yaml_event_delete(&ev);
	if (next_event(r, &ev))
		return -1;
	rc = 0;
	if (ev.type != YAML_STREAM_END_EVENT) {
		rc = fail_at(r, ev.start_mark, "the plan holds more than one YAML document");
		dgm_error_hint(r->err, "keep one plan per file; remove the second '---'");
	}
	yaml_event_delete(&ev);
	return rc;
}

int dgm_plan_yparse(dgm_ynode **root, const char *name, const char *text, size_t len,
		    dgm_error *err)
{
	yreader r = { .name = name, .text = text, .len = len, .err = err };
	yaml_event_t ev;
	int ret = -1;

	*root = NULL;
	if (!yaml_parser_initialize(&r.parser))
		return dgm_error_set(err, DGM_E_NOMEM, "%s: cannot start the YAML parser", name);
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
	if (next_event(&r, &ev)) /* stream start */
		goto out;
	yaml_event_delete(&ev);
	if (document(&r, root))
		goto out;
	/* "---" alone or "~": a document that says nothing. */
	if ((*root)->kind == DGM_Y_SCALAR && dgm_plan_ynode_is_null(*root)) {
		empty_plan(&r);
		goto out;
	}
	ret = 0;
out:
	if (ret) {
		dgm_plan_ynode_free(*root);
		*root = NULL;
	}
	yaml_parser_delete(&r.parser);
	return ret;
}

void dgm_plan_ynode_free(dgm_ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		dgm_plan_ynode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

bool dgm_plan_ynode_is_null(const dgm_ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->kind != DGM_Y_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(n->text, nulls[i]))
			return true;
	return false;
}
