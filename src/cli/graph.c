/* graph.c - `dgmigrate heads` and `dgmigrate graph`: the Alembic
 * revision graph of the code, at the work tree or at --at TAG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/cli.h"
#include "dgm/log.h"
#include "dgm/project.h"

static int load(dgm_alembic_script **s, const dgm_args *args, dgm_error *err)
{
	const char *repo = dgm_args_get(args, "repo");
	const char *config = dgm_args_get(args, "config");
	dgm_project_reader how = { .alembic = dgm_args_flag(args, "read-with-alembic"),
				   .ask = "--read-with-alembic" };

	/* like alembic: --config, else $ALEMBIC_CONFIG, else alembic.ini */
	if (!config)
		config = getenv("ALEMBIC_CONFIG") && *getenv("ALEMBIC_CONFIG") ?
			 getenv("ALEMBIC_CONFIG") : "alembic.ini";
	return dgm_project_read_graph(s, &how, repo ? repo : ".", config,
				      dgm_args_get(args, "at"), err);
}

/* A graph Alembic loaded (the project's code ran) says so. */
static void read_by(dgm_buf *b, const dgm_alembic_script *s, bool json)
{
	if (!s->read_by_alembic)
		return;
	dgm_buf_puts(b, json ? "\"read_by\":\"alembic\"," : "(read by Alembic)\n");
}

static void json_strs(dgm_buf *b, const char *const *v, size_t n)
{
	dgm_buf_putc(b, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			dgm_buf_putc(b, ',');
		dgm_buf_json_str(b, v[i]);
	}
	dgm_buf_putc(b, ']');
}

static void json_rev(dgm_buf *b, const dgm_alembic_rev *r)
{
	dgm_buf_puts(b, "{\"id\":");
	dgm_buf_json_str(b, r->id);
	dgm_buf_puts(b, ",\"down_revisions\":");
	json_strs(b, (const char *const *)r->down, r->ndown);
	dgm_buf_puts(b, ",\"depends_on\":[");
	for (size_t i = 0; i < r->ndeps; i++) {
		if (i)
			dgm_buf_putc(b, ',');
		dgm_buf_json_str(b, r->deps[i]->id);
	}
	dgm_buf_puts(b, "],\"branch_labels\":");
	json_strs(b, r->branch_labels, r->nbranch_labels);
	dgm_buf_puts(b, ",\"file\":");
	dgm_buf_json_str(b, r->path);
	dgm_buf_puts(b, ",\"message\":");
	dgm_buf_json_str(b, r->doc);
	dgm_buf_printf(b, ",\"head\":%s,\"base\":%s,\"mergepoint\":%s,\"branchpoint\":%s}",
		       r->is_head ? "true" : "false", r->is_base ? "true" : "false",
		       r->is_merge_point ? "true" : "false", r->is_branch_point ? "true" : "false");
}

static void labels(dgm_buf *b, const dgm_alembic_rev *r)
{
	if (!r->nbranch_labels)
		return;
	dgm_buf_puts(b, " (");
	for (size_t i = 0; i < r->nbranch_labels; i++)
		dgm_buf_printf(b, "%s%s", i ? ", " : "", r->branch_labels[i]);
	dgm_buf_putc(b, ')');
}

int dgm_cmd_heads(const dgm_args *args, dgm_error *err)
{
	dgm_alembic_script *s = NULL;
	const char *at = dgm_args_get(args, "at");
	dgm_buf b = DGM_BUF_INIT;

	if (load(&s, args, err))
		return -1;
	if (dgm_args_flag(args, "json")) {
		dgm_buf_putc(&b, '{');
		read_by(&b, s, true);
		dgm_buf_puts(&b, "\"at\":");
		if (at)
			dgm_buf_json_str(&b, at);
		else
			dgm_buf_puts(&b, "null");
		dgm_buf_puts(&b, ",\"heads\":[");
		for (size_t i = 0; i < s->nheads; i++) {
			if (i)
				dgm_buf_putc(&b, ',');
			json_rev(&b, s->heads[i]);
		}
		dgm_buf_printf(&b, "],\"revisions\":%zu}\n", s->count);
	} else {
		read_by(&b, s, false);
		for (size_t i = 0; i < s->nheads; i++) {
			dgm_buf_puts(&b, s->heads[i]->id);
			labels(&b, s->heads[i]);
			dgm_buf_puts(&b, " (head)\n");
		}
	}
	fputs(dgm_buf_cstr(&b), stdout);
	dgm_buf_free(&b);
	dgm_alembic_free(s);
	return 0;
}

static void text_line(dgm_buf *b, const dgm_alembic_rev *r)
{
	dgm_buf_puts(b, r->id);
	labels(b, r);
	if (r->is_head)
		dgm_buf_puts(b, " (head)");
	if (r->is_branch_point)
		dgm_buf_puts(b, " (branchpoint)");
	if (r->is_merge_point)
		dgm_buf_puts(b, " (mergepoint)");
	dgm_buf_puts(b, r->ndown ? "\n    <- " : "\n    <- (base)");
	for (size_t i = 0; i < r->ndown; i++)
		dgm_buf_printf(b, "%s%s", i ? ", " : "", r->down[i]);
	for (size_t i = 0; i < r->ndeps; i++)
		dgm_buf_printf(b, "%s%s", i ? ", " : "   depends on ", r->deps[i]->id);
	if (r->doc && *r->doc)
		dgm_buf_printf(b, "\n    %s", r->doc);
	dgm_buf_putc(b, '\n');
}

static void dot(dgm_buf *b, const dgm_alembic_script *s)
{
	dgm_buf_puts(b, "digraph alembic {\n  rankdir=BT;\n  node [shape=box, fontname=monospace];\n");
	for (size_t i = 0; i < s->count; i++) {
		const dgm_alembic_rev *r = s->revs[i];

		dgm_buf_printf(b, "  \"%s\" [label=\"%s", r->id, r->id);
		for (size_t j = 0; j < r->nbranch_labels; j++)
			dgm_buf_printf(b, "%s%s", j ? ", " : " (", r->branch_labels[j]);
		dgm_buf_printf(b, "%s\"%s];\n", r->nbranch_labels ? ")" : "",
			       r->is_head ? ", peripheries=2" : "");
		for (size_t j = 0; j < r->ndown; j++)
			dgm_buf_printf(b, "  \"%s\" -> \"%s\";\n", r->down[j], r->id);
		for (size_t j = 0; j < r->ndeps; j++)
			dgm_buf_printf(b, "  \"%s\" -> \"%s\" [style=dashed, label=\"depends_on\"];\n",
				       r->deps[j]->id, r->id);
	}
	dgm_buf_puts(b, "}\n");
}

int dgm_cmd_graph(const dgm_args *args, dgm_error *err)
{
	dgm_alembic_script *s = NULL;
	dgm_alembic_steps st = { 0 };
	dgm_buf b = DGM_BUF_INIT;
	int ret = -1;

	if (load(&s, args, err))
		return -1;
	if (dgm_alembic_history(&st, s, NULL, NULL, err))
		goto out;
	if (dgm_args_flag(args, "dot")) {
		if (s->read_by_alembic)
			dgm_buf_puts(&b, "// read by Alembic\n");
		dot(&b, s);
	} else if (dgm_args_flag(args, "json")) {
		dgm_buf_putc(&b, '{');
		read_by(&b, s, true);
		dgm_buf_puts(&b, "\"revisions\":[");
		for (size_t i = 0; i < st.count; i++) {
			if (i)
				dgm_buf_putc(&b, ',');
			json_rev(&b, st.revs[i]);
		}
		dgm_buf_puts(&b, "]}\n");
	} else {
		read_by(&b, s, false);
		for (size_t i = 0; i < st.count; i++)
			text_line(&b, st.revs[i]);
	}
	fputs(dgm_buf_cstr(&b), stdout);
	ret = 0;
out:
	dgm_buf_free(&b);
	dgm_alembic_steps_free(&st);
	dgm_alembic_free(s);
	return ret;
}
