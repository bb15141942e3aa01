/* rollback.c - `dgmigrate rollback --to TAG`: back to a release, in an
 * order that works and that a second run can finish from wherever a
 * failed or killed one stopped: a safety snapshot of the current state;
 * alembic downgrade to exactly the heads of TAG's graph with the code
 * that knows the database's revisions (the newer release: the work tree,
 * or a commit found in git and checked out first); where asked, or where
 * the downgrade failed and the data-loss check allows it, the database
 * snapshot restored instead; the model store from the release's archive;
 * only then TAG checked out, once the database holds TAG's heads; verify. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dgm/project.h"
#include "dgm/dump.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/migrate.h"
#include "dgm/pg.h"
#include "dgm/pgbackrest.h"
#include "dgm/restore.h"
#include "dgm/run.h"
#include "internal.h"

typedef struct rb {
	dgm_job *r;
	const dgm_rollback_opts *o;
	dgm_alembic_script *now;      /* graph of the code that knows the database */
	char code_commit[41];         /* that code's commit */
	bool code_in_tree;            /* it is what the work tree holds */
	dgm_alembic_script *then;     /* graph at TAG */
	char **want;                  /* TAG's heads */
	size_t nwant;
	char tag_commit[41];
	dgm_snapshot release;         /* newest snapshot taken at TAG's heads */
	bool have_release;
	char **targets;               /* downgrade steps */
	size_t ntargets;
	bool restore;                 /* restore the database snapshot */
	dgm_dataloss dl;              /* what restoring it would discard */
	bool checked;                 /* dl was filled */
	struct timespec store_checked; /* before the safety snapshot compared the
				       * store with the release's archive */
	bool store_same;              /* it matched (the archive was linked) */
	bool aside;                   /* the safety snapshot's database is the
				       * database itself, set aside by the restore */
} rb;

static void push(dgm_strlist *l, const char *s)
{
	l->items = dgm_xrealloc(l->items, (l->count + 2) * sizeof(char *));
	l->items[l->count++] = dgm_xstrdup(s);
	l->items[l->count] = NULL;
}

static bool knows_all(const dgm_alembic_script *s, char *const *revs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!dgm_alembic_find(s, revs[i]))
			return false;
	return true;
}

/* Commits earlier runs recorded (newest journal first): where a failed
 * rollback started from, which code ran its downgrade, which tag an
 * apply checked out. */
static void journal_commits(dgm_strlist *out, const dgm_plan *plan)
{
	char *dir = dgm_xasprintf("%s/journal", plan->state_dir);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	static const char *keys[] = { "commit_code", "commit_before", "tag_commit" };

	for (int i = n - 1; i >= 0; i--) {
		size_t len = strlen(names[i]->d_name);
		char *path = dgm_xasprintf("%s/%s", dir, names[i]->d_name);
		FILE *f = len > 6 && !strcmp(names[i]->d_name + len - 6, ".jsonl") &&
			  out->count < 16 ? fopen(path, "r") : NULL;
		char *line = NULL;
		size_t cap = 0;

		while (f && getline(&line, &cap, f) > 0) {
			json_t *rec = json_loads(line, 0, NULL);
			const char *type = json_string_value(json_object_get(rec, "type"));

			if (type && !strcmp(type, "facts"))
				for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
					const char *c = json_string_value(json_object_get(rec, keys[k]));

					if (c && strlen(c) == 40)
						push(out, c);
				}
			json_decref(rec);
		}
		if (f)
			fclose(f);
		free(line);
		free(path);
		free(names[i]);
	}
	free(names);
	free(dir);
}

/* The code whose graph knows every revision of the database: the work
 * tree when it does (the newer release is checked out), else a commit
 * from git - one an earlier run recorded, the plan's tag, any tag - that
 * is checked out before the downgrade. A failed rollback of an older
 * dgmigrate, or a hand-made checkout, leaves the work tree behind. */
static int find_code(rb *b, git_repository *repo, dgm_error *err)
{
	dgm_job *r = b->r;
	dgm_strlist cands = { 0 };
	git_strarray tags = { NULL, 0 };
	int ret = -1;

	memcpy(b->code_commit, r->facts.head, sizeof(b->code_commit));
	b->code_in_tree = true;
	if (dgm_project_plan_graph(&b->now, r->plan, NULL, err))
		return -1;
	if (knows_all(b->now, r->facts.revs, r->facts.nrevs))
		return 0;
	journal_commits(&cands, r->plan);
	push(&cands, r->plan->release.tag);
	if (dgm_git_tag_names(&tags, repo, err) == 0)
		for (size_t i = 0; i < tags.count; i++)
			push(&cands, tags.strings[i]);
	dgm_error_clear(err);
	for (size_t i = 0; i < cands.count; i++) {
		dgm_alembic_script *s = NULL;
		dgm_error e = DGM_ERROR_INIT;
		git_oid oid;

		if (dgm_git_resolve_commit(&oid, repo, cands.items[i], &e) ||
		    dgm_project_plan_graph(&s, r->plan, cands.items[i], &e) ||
		    !knows_all(s, r->facts.revs, r->facts.nrevs)) {
			dgm_alembic_free(s);
			continue;
		}
		dgm_alembic_free(b->now);
		b->now = s;
		git_oid_tostr(b->code_commit, sizeof(b->code_commit), &oid);
		b->code_in_tree = false;
		dgm_info("the work tree (HEAD %.12s) does not know the database's revisions; the "
			 "code of '%s' (commit %.12s) does, and runs the downgrade", r->facts.head,
			 cands.items[i], b->code_commit);
		ret = 0;
		goto out;
	}
	ret = dgm_project_check_db_known(b->now, r->facts.revs, r->facts.nrevs, r->plan,
					 "the checked-out code, nor any tag,", err);
out:
	git_strarray_dispose(&tags);
	dgm_strlist_free(&cands);
	return ret;
}

static int read_state(rb *b, dgm_error *err)
{
	const dgm_plan *plan = b->r->plan;
	git_repository *repo = NULL;
	PGconn *conn = NULL;
	git_oid oid;
	bool detached;
	int ret = -1;

	if (dgm_git_open(&repo, plan->release.repository, err))
		return -1;
	if (dgm_git_resolve_commit(&oid, repo, b->o->to, err) ||
	    dgm_git_head(b->r->facts.head, &detached, repo, err))
		goto out;
	git_oid_tostr(b->tag_commit, sizeof(b->tag_commit), &oid);
	memcpy(b->r->facts.tag_commit, b->tag_commit, sizeof(b->tag_commit));
	if (dgm_pg_connect(&conn, plan->database.url, "dgmigrate rollback", err) ||
	    dgm_pg_read_revisions(&b->r->facts.revs, &b->r->facts.nrevs, conn,
				  plan->alembic.version_table, plan->alembic.version_schema, err))
		goto out;
	dgm_pg_server_version(conn, b->r->facts.server_version,
			      sizeof(b->r->facts.server_version));
	if (plan->alembic.read_graph == DGM_READ_GRAPH_ALEMBIC)
		dgm_info("the revision graphs are read by Alembic (alembic.read_graph: alembic)");
	if (dgm_project_plan_graph(&b->then, plan, b->o->to, err) ||
	    find_code(b, repo, err))
		goto out;
	b->nwant = b->then->nheads;
	b->want = dgm_xcalloc(b->nwant + 1, sizeof(char *));
	for (size_t i = 0; i < b->nwant; i++)
		b->want[i] = b->then->heads[i]->id;
	ret = 0;
out:
	dgm_pg_close(conn);
	dgm_git_close(repo);
	return ret;
}

/* TAG must be behind the database (find_code made sure some code knows
 * the database). */
static int check_direction(rb *b, dgm_error *err)
{
	dgm_job *r = b->r;
	char **targets = NULL;
	size_t n = 0;

	for (size_t i = 0; i < b->nwant; i++) {
		dgm_alembic_steps st = { 0 };
		dgm_error e = DGM_ERROR_INIT;
		int rc = dgm_alembic_upgrade(&st, b->now, (const char *const *)r->facts.revs,
					     r->facts.nrevs, b->want[i], &e);
		size_t count = st.count;

		dgm_alembic_steps_free(&st);
		if (!dgm_alembic_find(b->now, b->want[i]))
			return dgm_error_set(err, DGM_E_USAGE, "'%s' is newer than the database and the "
					     "checked-out code: its head '%s' is unknown to both",
					     b->o->to, b->want[i]);
		if (rc == 0 && count > 0)
			return dgm_error_set(err, DGM_E_USAGE, "'%s' is newer than the database: its "
					     "head '%s' is not applied", b->o->to, b->want[i]);
	}
	if (dgm_migrate_plan_downgrade(&targets, &n, b->now, r->facts.revs, r->facts.nrevs,
				       b->want, b->nwant, err) == 0) {
		b->targets = targets;
		b->ntargets = n;
	} else if (b->o->restore == 0) {
		return -1;
	} else {
		dgm_warn("%s: the database snapshot will be restored instead", err->msg);
		dgm_error_clear(err);
		b->restore = true;
	}
	return 0;
}

/* The newest snapshot whose revisions are exactly TAG's heads. */
static void find_release_snapshot(rb *b)
{
	dgm_snapshot *all = NULL;
	size_t n = 0;
	dgm_error e = DGM_ERROR_INIT;

	if (dgm_snapshot_list(&all, &n, b->r->plan->snapshot.directory, &e))
		return;
	for (size_t i = 0; i < n && !b->have_release; i++)
		if (dgm_migrate_same_set(all[i].revisions.items, all[i].revisions.count, b->want,
					 b->nwant) && dgm_snapshot_authentic(&all[i], b->r->plan)) {
			b->release = all[i];
			memset(&all[i], 0, sizeof(all[i]));
			b->have_release = true;
		}
	dgm_snapshot_list_free(all, n);
}

/* The one data-loss check, made before anything changes: it decides an
 * explicit --restore now, and the fallback if the downgrade fails. */
static void check_loss(rb *b)
{
	if (!b->have_release || b->o->restore == 0)
		return;
	dgm_dataloss_check(&b->dl, b->r->plan, &b->release, NULL);
	b->checked = true;
}

static int choose_path(rb *b, dgm_error *err)
{
	if (b->o->restore == 1)
		b->restore = true;
	if (!b->restore)
		return 0;
	if (!b->have_release)
		return dgm_error_set(err, DGM_E_RUN, "no snapshot of '%s' (revisions %s) to restore "
				     "in '%s'", b->o->to, b->nwant ? b->want[0] : "base",
				     b->r->plan->snapshot.directory);
	return dgm_dataloss_gate(&b->dl, b->o->accept_data_loss, "roll back by downgrade "
				 "(without --restore), which keeps them", err);
}

/* A restore replaces the database anyway: the safety snapshot keeps the
 * database itself, renamed aside by the swap, instead of a full copy of
 * it (where the restore is by swap and the plan asks for a copy). */
static bool use_aside(const rb *b)
{
	const dgm_plan *plan = b->r->plan;

	return b->restore && b->have_release && plan->snapshot.rollback_safety == DGM_SAFETY_COPY &&
	       plan->snapshot.engine != DGM_ENGINE_PGBACKREST &&
	       dgm_snapshot_restore_swaps(plan, &b->release);
}

/* One line of the dry run's plan: text, or a JSON event. */
static void say(const char *item, const char *fmt, ...) DGM_PRINTF(2, 3);

static void say(const char *item, const char *fmt, ...)
{
	dgm_buf line = DGM_BUF_INIT, f = DGM_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dgm_buf_vprintf(&line, fmt, ap);
	va_end(ap);
	if (dgm_log_json()) {
		dgm_buf_puts(&f, "\"item\":");
		dgm_buf_json_str(&f, item);
		dgm_buf_puts(&f, ",\"detail\":");
		dgm_buf_json_str(&f, dgm_buf_cstr(&line));
		dgm_event("plan", f.ptr);
	} else
		printf("%-12s %s\n", item, dgm_buf_cstr(&line));
	dgm_buf_free(&line);
	dgm_buf_free(&f);
}

static void print_fallback(rb *b)
{
	char *what;

	if (!b->have_release || b->o->restore == 0) {
		say("fallback", "none if the downgrade fails: %s", b->o->restore == 0 ?
		    "--no-restore" : "no snapshot of the release to restore");
		return;
	}
	what = dgm_dataloss_summary(&b->dl);
	say("fallback", "if the downgrade fails: restore snapshot '%s'; data-loss check: %s%s",
	    b->release.id, what, b->dl.verdict == DGM_DATALOSS_NONE ? "" :
	    b->o->accept_data_loss ? " (accepted: --accept-data-loss)" :
	    " - refused without --accept-data-loss: the rollback would stop there, exit 1");
	free(what);
}

static void print_plan(rb *b)
{
	dgm_job *r = b->r;
	char *from = dgm_strs_join(r->facts.revs, r->facts.nrevs, "base");
	char *to = dgm_strs_join(b->want, b->nwant, "base");

	say("rollback", "to '%s' (commit %.12s): dry run, nothing was changed", b->o->to,
	    b->tag_commit);
	say("database", "at %s; target: the heads of '%s': %s", from, b->o->to, to);
	if (use_aside(b))
		say("safety", "snapshot of the model store first; of the database, the database "
		    "itself: renamed aside (kept as a server-side copy) when the restore "
		    "replaces it, not copied");
	else
		say("safety", "snapshot of the current database (%s) and model store first",
		    r->plan->snapshot.rollback_safety == DGM_SAFETY_COPY ? "a server-side copy, "
		    "or pg_dump if other sessions are connected" : "pg_dump");
	if (b->restore) {
		say("database", "restore snapshot '%s'", b->release.id);
		if (b->release.pitr) {
			char *how = dgm_pgbr_restore_text(r->plan, b->release.pitr);

			say("database", "%s", how);
			free(how);
		}
	} else {
		if (b->ntargets && !b->code_in_tree)
			say("checkout", "HEAD %.12s -> %.12s, the code that knows the database's "
			    "revisions, to run the downgrade", r->facts.head, b->code_commit);
		for (size_t i = 0; i < b->ntargets; i++)
			say("downgrade", "alembic downgrade %s (with the code of %.12s)",
			    b->targets[i], b->code_commit);
		if (!b->ntargets)
			say("downgrade", "none: the database holds the heads of '%s'", b->o->to);
		else
			print_fallback(b);
	}
	if (b->have_release)
		say("model store", "from snapshot '%s' (archive sha256 %s)%s", b->release.id,
		    b->release.archive_sha256, b->release.has_store ? "" : ": none archived");
	else
		say("model store", "left as is: no snapshot of '%s' found", b->o->to);
	say("checkout", "HEAD -> '%s' (%.12s), once the database holds its heads", b->o->to,
	    b->tag_commit);
	if (b->checked) {
		char *what = dgm_dataloss_summary(&b->dl);

		say("data loss", "a restore of snapshot '%s' would discard: %s%s%s", b->release.id,
		    what, b->dl.basis ? "; compared with " : "", b->dl.basis ? b->dl.basis : "");
		free(what);
	}
	free(from);
	free(to);
}

/* SQL of one step, or the reason it cannot be shown. */
static void say_sql(const char *range, const char *sql, const char *error)
{
	dgm_buf f = DGM_BUF_INIT;

	if (!dgm_log_json()) {
		if (error)
			printf("\n-- the SQL of 'alembic downgrade %s --sql' cannot be rendered: %s\n",
			       range, error);
		else
			printf("\n-- SQL of 'alembic downgrade %s --sql':\n%s", range, sql);
		return;
	}
	dgm_buf_puts(&f, "\"range\":");
	dgm_buf_json_str(&f, range);
	dgm_buf_puts(&f, error ? ",\"error\":" : ",\"sql\":");
	dgm_buf_json_str(&f, error ? error : sql);
	dgm_event("sql", f.ptr);
	dgm_buf_free(&f);
}

/* The revisions after downgrade step i, from the graph (the SQL of the
 * next step starts there whether or not this one could be rendered). */
static void next_heads(rb *b, size_t i, char ***owned, size_t *n)
{
	dgm_alembic_steps st = { 0 };
	dgm_error e = DGM_ERROR_INIT;
	const char *const *cur = *owned ? (const char *const *)*owned :
				 (const char *const *)b->r->facts.revs;

	if (dgm_alembic_downgrade(&st, b->now, cur, *owned ? *n : b->r->facts.nrevs,
				  b->targets[i], &e) == 0) {
		dgm_pg_strings_free(*owned);
		*n = st.nheads_after;
		*owned = dgm_xcalloc(*n + 1, sizeof(char *));
		for (size_t j = 0; j < *n; j++)
			(*owned)[j] = dgm_xstrdup(st.heads_after[j]->id);
	}
	dgm_alembic_steps_free(&st);
}

/* The SQL of each downgrade step, from the code that would run it (an
 * export when the work tree holds other code). A step that cannot be
 * rendered is reported, and the others still are. */
static int print_sql(rb *b, dgm_error *err)
{
	const dgm_plan *plan = b->r->plan;
	char **owned = NULL, *tmp = NULL;
	size_t nowned = 0;
	const char *dir = plan->release.repository;
	int ret = 0;

	if (!b->code_in_tree) {
		tmp = dgm_xasprintf("%s/dry-run-XXXXXX", plan->state_dir);
		if (dgm_fs_mkdir_p(plan->state_dir, 0700, err) || !mkdtemp(tmp) || rmdir(tmp) ||
		    dgm_git_export(plan->release.repository, b->code_commit, tmp, err)) {
			ret = err->code ? -1 : dgm_error_errno(err, DGM_E_IO, "cannot create '%s'", tmp);
			goto out;
		}
		dir = tmp;
	}
	for (size_t i = 0; i < b->ntargets; i++) {
		size_t ncur = owned ? nowned : b->r->facts.nrevs;
		const char *from = owned ? owned[0] : (ncur ? b->r->facts.revs[0] : "base");
		dgm_buf sql = DGM_BUF_INIT;
		dgm_error e = DGM_ERROR_INIT;
		char *range;

		if (ncur != 1) {
			say("sql", "step %zu starts from %zu heads: 'alembic --sql' cannot show it",
			    i + 1, ncur);
			break;
		}
		range = dgm_xasprintf("%s:%s", from, b->targets[i]);
		if (dgm_migrate_alembic(plan, dir, "downgrade", range, true, &sql, &e) == 0)
			say_sql(range, dgm_buf_cstr(&sql), NULL);
		else {
			say_sql(range, NULL, e.msg);
			if (ret == 0) {
				*err = e;
				dgm_error_prefix(err, "dry run: the SQL of 'alembic downgrade %s --sql' "
						 "cannot be rendered", range);
				dgm_error_hint(err, "the plan above is what the rollback would do; a "
					       "downgrade that fails there is followed by the fallback "
					       "it names");
				ret = -1;
			}
		}
		free(range);
		dgm_buf_free(&sql);
		next_heads(b, i, &owned, &nowned);
	}
out:
	if (tmp) {
		dgm_error ignore = DGM_ERROR_INIT;

		dgm_fs_remove_tree(tmp, &ignore);
		free(tmp);
	}
	dgm_pg_strings_free(owned);
	return ret;
}

static int do_downgrade(rb *b, dgm_error *err)
{
	long t = dgm_now_ms();

	dgm_job_step_start(b->r, "downgrade");
	b->r->migrate_started = true;
	for (size_t i = 0; i < b->ntargets; i++) {
		dgm_info("alembic downgrade %s", b->targets[i]);
		if (dgm_migrate_alembic(b->r->plan, b->r->plan->release.repository, "downgrade",
					b->targets[i], false, NULL, err)) {
			dgm_job_step_failed(b->r, "downgrade", dgm_now_ms() - t, err);
			return -1;
		}
	}
	dgm_job_step_done(b->r, "downgrade", dgm_now_ms() - t, NULL, "%zu alembic downgrade "
			  "step%s to %s", b->ntargets, b->ntargets == 1 ? "" : "s",
			  b->nwant ? b->want[0] : "base");
	return 0;
}

static int do_checkout(rb *b, dgm_error *err)
{
	long t = dgm_now_ms();

	dgm_job_step_start(b->r, "checkout");
	if (dgm_git_checkout(&b->r->git_before, b->r->plan->release.repository, b->o->to, err)) {
		dgm_job_step_failed(b->r, "checkout", dgm_now_ms() - t, err);
		return -1;
	}
	b->r->checked_out = true;
	dgm_job_step_done(b->r, "checkout", dgm_now_ms() - t, NULL, "'%s' checked out: HEAD "
			  "%.12s -> %.12s", b->o->to, b->r->git_before.commit, b->tag_commit);
	return 0;
}

/* Tables in the release snapshot's dump, from pg_restore --list. */
static void snapshot_tables(dgm_buf *out, const dgm_snapshot *s)
{
	char *dump = dgm_xasprintf("%s/%s", s->dir, s->format == DGM_DUMP_DIRECTORY ? "db" :
				   "db.dump");
	const char *argv[] = { "pg_restore", "--list", dump, NULL };
	dgm_buf list = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &list, .timeout_ms = 60000 };
	dgm_error e = DGM_ERROR_INIT;

	char **names = NULL;
	size_t n = 0;

	if (dgm_run(&c, &e) == 0)
		for (char *l = strtok(list.ptr, "\n"); l; l = strtok(NULL, "\n")) {
			char schema[128], name[128];

			if (strstr(l, " TABLE DATA ") ||
			    sscanf(l, "%*d; %*u %*u TABLE %127s %127s", schema, name) != 2 ||
			    !strcmp(schema, "dgmigrate"))
				continue;
			names = dgm_xrealloc(names, (n + 1) * sizeof(char *));
			names[n++] = dgm_xasprintf("%s.%s", schema, name);
		}
	/* pg_restore lists in dump order; the database's list is sorted */
	dgm_sort_strings((const char **)names, n);
	for (size_t i = 0; i < n; i++) {
		dgm_buf_printf(out, "%s\n", names[i]);
		free(names[i]);
	}
	free(names);
	dgm_buf_free(&list);
	free(dump);
}

static int verify(rb *b, dgm_error *err)
{
	dgm_job *r = b->r;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	dgm_buf want = DGM_BUF_INIT, have = DGM_BUF_INIT;
	dgm_git_state head;
	long t = dgm_now_ms();
	int ret = -1;

	dgm_job_step_start(r, "verify");
	if (dgm_pg_connect(&conn, r->plan->database.url, "dgmigrate verify", err) ||
	    dgm_pg_read_revisions(&r->revs_after, &r->nrevs_after, conn,
				  r->plan->alembic.version_table, r->plan->alembic.version_schema, err) ||
	    dgm_git_state_read(&head, r->plan->release.repository, err))
		goto out;
	if (!dgm_migrate_same_set(r->revs_after, r->nrevs_after, b->want, b->nwant)) {
		dgm_error_set(err, DGM_E_RUN, "alembic_version holds %s%s, not the heads of '%s'",
			      r->nrevs_after ? r->revs_after[0] : "nothing",
			      r->nrevs_after > 1 ? " and more" : "", b->o->to);
		goto out;
	}
	if (strcmp(head.commit, b->tag_commit) != 0) {
		dgm_error_set(err, DGM_E_RUN, "HEAD is %.12s, not '%s'", head.commit, b->o->to);
		goto out;
	}
	if (b->have_release) {
		snapshot_tables(&want, &b->release);
		if (dgm_pg_query(&res, conn, "SELECT string_agg(schemaname || '.' || tablename, E'\\n' "
				 "ORDER BY (schemaname || '.' || tablename) COLLATE \"C\") || E'\\n' FROM pg_tables WHERE schemaname NOT IN "
				 "('pg_catalog', 'information_schema', 'dgmigrate')", 0, NULL, err))
			goto out;
		dgm_buf_puts(&have, PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
		if (want.len && strcmp(dgm_buf_cstr(&want), dgm_buf_cstr(&have)) != 0) {
			dgm_error_set(err, DGM_E_RUN, "the tables differ from those of snapshot '%s' "
				      "of '%s': expected [%s], found [%s]", b->release.id, b->o->to,
				      dgm_buf_cstr(&want), dgm_buf_cstr(&have));
			goto out;
		}
	}
	dgm_job_step_done(r, "verify", dgm_now_ms() - t, NULL, "alembic_version = %s, HEAD at "
			  "'%s'%s", r->nrevs_after ? r->revs_after[0] : "(base)", b->o->to,
			  want.len ? ", the same tables as the release snapshot" : "");
	ret = 0;
out:
	if (ret)
		dgm_job_step_failed(r, "verify", dgm_now_ms() - t, err);
	PQclear(res);
	dgm_pg_close(conn);
	dgm_buf_free(&want);
	dgm_buf_free(&have);
	return ret;
}

/* The journal names what the restore will rename, for resume (aside.c). */
static json_t *snapshot_data(const rb *b)
{
	const dgm_snapshot *s = &b->r->snap;
	char *staging;
	json_t *d;

	if (!b->aside)
		return json_pack("{s:s}", "snapshot", s->id);
	staging = dgm_db_restore_staging_name(s->database, b->release.id);
	d = json_pack("{s:s, s:s, s:s, s:s}", "snapshot", s->id, "database", s->database, "aside",
		      s->db_copy, "staging", staging);
	free(staging);
	return d;
}

static int safety_snapshot(rb *b, dgm_error *err)
{
	const dgm_plan *plan = b->r->plan;
	dgm_snapshot_opts so = { .kind = "pre-rollback", .commit = b->r->facts.head,
				 .db = plan->snapshot.rollback_safety == DGM_SAFETY_COPY ?
				       DGM_SNAPSHOT_COPY : DGM_SNAPSHOT_DUMP,
				 .store_like = b->have_release ? &b->release : NULL };
	long t = dgm_now_ms();

	dgm_job_step_start(b->r, "snapshot");
	b->aside = use_aside(b);
	if (b->aside)
		so.db = DGM_SNAPSHOT_ASIDE;
	clock_gettime(CLOCK_REALTIME, &b->store_checked);
	if (dgm_snapshot_create(&b->r->snap, plan, &so, err)) {
		dgm_job_step_failed(b->r, "snapshot", dgm_now_ms() - t, err);
		return -1;
	}
	b->r->have_snap = true;
	b->store_same = b->have_release && b->r->snap.store_from &&
			!strcmp(b->r->snap.store_from, b->release.id);
	dgm_job_step_done(b->r, "snapshot", dgm_now_ms() - t, snapshot_data(b),
			  b->aside ? "safety snapshot '%s': the model store now, the database "
			  "itself when the restore replaces it (renamed aside, not copied)" :
			  "safety snapshot '%s' of the current state", b->r->snap.id);
	return 0;
}

/* The restore did not set the database aside (or put it back): the
 * safety snapshot that waited for it is not one (discarding keeps one
 * whose database is set aside). */
static void drop_unused_aside(rb *b)
{
	struct stat st;

	if (!b->aside)
		return;
	dgm_snapshot_discard_aside(&b->r->snap, b->r->plan);
	b->r->have_snap = stat(b->r->snap.dir, &st) == 0;
}

static int do_restore(rb *b, bool database, bool store, const char *step, dgm_error *err)
{
	dgm_job_restore_opts ro = {
		.ro = { .database = database, .store = store, .terminate = true },
		.checked = b->checked ? &b->dl : NULL, .accept = b->o->accept_data_loss,
		.kept_in = b->r->have_snap ? b->r->snap.id : NULL,
		.instead = "roll back by downgrade (without --restore), which keeps them" };
	long t = dgm_now_ms();

	if (b->aside && database)
		ro.ro.aside_into = &b->r->snap;
	dgm_job_step_start(b->r, step);
	if (dgm_job_restore(b->r, &b->release, &ro, err)) {
		dgm_job_step_failed(b->r, step, dgm_now_ms() - t, err);
		drop_unused_aside(b);
		return -1;
	}
	dgm_job_step_done(b->r, step, dgm_now_ms() - t, json_pack("{s:s, s:O?}", "snapshot",
			  b->release.id, "data_loss", database ? b->r->data_loss : NULL),
			  "snapshot '%s' restored (%s)", b->release.id, step);
	return 0;
}

/* The downgrade runs with the code that knows the database: check it
 * out first when the work tree holds other code. */
static int checkout_code(rb *b, dgm_error *err)
{
	dgm_git_state prev;
	long t = dgm_now_ms();

	if (b->code_in_tree)
		return 0;
	dgm_job_step_start(b->r, "checkout.code");
	if (dgm_git_checkout(&prev, b->r->plan->release.repository, b->code_commit, err)) {
		dgm_job_step_failed(b->r, "checkout.code", dgm_now_ms() - t, err);
		return -1;
	}
	b->code_in_tree = true;
	dgm_job_step_done(b->r, "checkout.code", dgm_now_ms() - t, json_pack("{s:s, s:s}",
			  "commit_before", prev.commit, "commit_after", b->code_commit),
			  "HEAD %.12s -> %.12s, the code that knows the database's revisions, for "
			  "the downgrade", prev.commit, b->code_commit);
	return 0;
}

/* Writes made while the rollback ran (by the failed downgrade itself or
 * by the application) would be discarded too, and are in no snapshot:
 * count again, and let the larger answer decide. */
static void recheck(rb *b)
{
	dgm_dataloss again;

	dgm_dataloss_check(&again, b->r->plan, &b->release, NULL);
	if (again.verdict == b->dl.verdict && again.total == b->dl.total) {
		dgm_dataloss_free(&again);
		return;
	}
	dgm_warn("writes were made while the rollback ran (by the failed downgrade or the "
		 "application; the safety snapshot was taken before them): they count too");
	dgm_dataloss_free(&b->dl);
	b->dl = again;
}

/* The downgrade failed: restore the release snapshot instead, if the
 * data-loss check allows it; else stop where the downgrade left the
 * database, with the code still at the newer release. */
static int fallback(rb *b, dgm_error *err)
{
	dgm_error refused = DGM_ERROR_INIT;
	char why[DGM_ERROR_MSG_MAX];

	if (b->o->restore == 0 || !b->have_release)
		return -1;
	snprintf(why, sizeof(why), "%s", err->msg);
	recheck(b);
	if (dgm_dataloss_gate(&b->dl, b->o->accept_data_loss, "", &refused)) {
		dgm_error_set(err, DGM_E_RUN, "the downgrade failed (%.900s), and %.1000s", why,
			      refused.msg);
		dgm_error_hint(err, "the rollback stopped: the database is as the failed downgrade "
			       "left it and the code at %.12s. Either restore anyway: dgmigrate "
			       "rollback --to %s PLAN --accept-data-loss (the writes stay in safety "
			       "snapshot '%s'); or keep them: fix the failing downgrade and run the "
			       "rollback again, or go back to the newer release with dgmigrate apply "
			       "PLAN", b->code_commit, b->o->to, b->r->have_snap ? b->r->snap.id : "?");
		return -1;
	}
	dgm_warn("the downgrade failed (%s): restoring snapshot '%s' instead", why,
		 b->release.id);
	dgm_error_clear(err);
	b->restore = true;
	return 0;
}

/* The store matched the release's archive file by file when the safety
 * snapshot linked it, and nothing in it has changed since: restoring it
 * would read and hash it all again to write nothing. */
static bool store_still_same(rb *b)
{
	const char *store = b->r->plan->model_store.path;

	if (!b->store_same || !store || b->r->plan->model_store.extra_paths.count ||
	    !dgm_release_store_quiet(store, b->store_checked))
		return false;
	dgm_info("the model store matches snapshot '%s' file by file (compared for the safety "
		 "snapshot) and nothing in it has changed since: left as is", b->release.id);
	return true;
}

static void store_kept(rb *b)
{
	dgm_job_step_start(b->r, "restore.store");
	dgm_job_step_done(b->r, "restore.store", 0, json_pack("{s:s}", "snapshot", b->release.id),
			  "the model store matches snapshot '%s' (compared file by file for the "
			  "safety snapshot, unchanged since)", b->release.id);
}

static int run_rollback(rb *b, dgm_error *err)
{
	bool store;

	if (safety_snapshot(b, err))
		return -1;
	if (!b->restore && b->ntargets &&
	    (checkout_code(b, err) || (do_downgrade(b, err) && fallback(b, err))))
		return -1;
	store = b->have_release && b->release.has_store;
	if (store && store_still_same(b)) {
		store = false;
		store_kept(b);
	}
	if (b->have_release && (b->restore || store) &&
	    do_restore(b, b->restore, store, b->restore ? "restore" : "restore.store", err))
		return -1;
	/* the code follows the database, never goes ahead of it */
	if (do_checkout(b, err))
		return -1;
	return verify(b, err);
}

static void rb_free(rb *b)
{
	dgm_migrate_targets_free(b->targets, b->ntargets);
	free(b->want);
	dgm_alembic_free(b->now);
	dgm_alembic_free(b->then);
	if (b->have_release)
		dgm_snapshot_free(&b->release);
	dgm_dataloss_free(&b->dl);
}

/* A dry run keeps no journal, report or history: a job with none. */
static void dry_job(dgm_job *r, const dgm_plan *plan)
{
	memset(r, 0, sizeof(*r));
	r->plan = plan;
	r->command = "rollback --dry-run";
	r->journal_fd = -1;
	r->steps = json_array();
	r->started_ms = dgm_now_ms();
}

static int dry_run(rb *b, dgm_error *err)
{
	dgm_error refused = DGM_ERROR_INIT;
	int rc = choose_path(b, &refused);

	print_plan(b);
	if (b->ntargets && !b->restore && print_sql(b, err))
		return -1;
	if (rc) {
		*err = refused;
		return -1;
	}
	return 0;
}

int dgm_release_rollback(const dgm_plan *plan, const dgm_rollback_opts *o, dgm_error *err)
{
	dgm_job r;
	rb b = { .o = o };
	int ret = -1;

	/* a dry run too: an interrupted restore leaves nothing it could read */
	if (o->dry_run && dgm_restore_guard(plan, err))
		return -1;
	if (o->dry_run)
		dry_job(&r, plan);
	else if (dgm_job_begin_locked(&r, plan, "rollback", o->plan_path, o->wait_lock_ms, o->lock,
				      err))
		return -1;
	b.r = &r;
	r.reason = o->reason;
	r.tag = o->to;
	if (read_state(&b, err) ||
	    dgm_release_check_untracked(plan->release.repository, b.now, err) ||
	    check_direction(&b, err))
		goto fail;
	find_release_snapshot(&b);
	check_loss(&b);
	if (o->dry_run) {
		ret = dry_run(&b, err);
		goto out;
	}
	if (choose_path(&b, err))
		goto fail;
	dgm_job_journal(&r, "facts", json_pack("{s:s, s:s, s:s, s:s, s:b}", "to", o->to,
					       "commit_before", r.facts.head, "commit_code",
					       b.code_commit, "tag_commit", b.tag_commit, "restore",
					       b.restore));
	if (run_rollback(&b, err)) {
		if (r.have_snap && !err->hint[0])
			dgm_error_hint(err, "the state before the rollback is in snapshot '%s': "
				       "dgmigrate backups restore %s PLAN", r.snap.id, r.snap.id);
		goto fail;
	}
	dgm_job_mark_baseline(&r, &r.snap);
	dgm_job_finish(&r, "success", NULL);
	dgm_info("rolled back to '%s'", o->to);
	ret = 0;
	goto out;
fail:
	if (!o->dry_run) {
		/* what the rollback changed is its own: a restore of the safety
		 * snapshot counts only what is written from here */
		if (r.have_snap)
			dgm_job_mark_baseline(&r, &r.snap);
		dgm_job_finish(&r, "failed", err);
	}
out:
	rb_free(&b);
	dgm_lock_release(&r.lock);
	dgm_job_free(&r);
	return ret;
}
