/* toc.c - the part of a dump that the restoring role may restore.
 *
 * pg_dump keeps the grants a DBA gave on PostgreSQL's own functions in
 * pg_catalog (GRANT EXECUTE ON FUNCTION pg_create_restore_point(text),
 * pg_switch_wal() TO app: what the pgbackrest engine asks for). Only a
 * superuser may give them again, so pg_restore as the application's
 * role stops at the first one and the whole restore fails. For a role
 * that is not a superuser those entries are left out of pg_restore's
 * list (-L), and the run says which ones a superuser must give again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "dgm/run.h"
#include "internal.h"

/* "ID; CATALOG OID ACL pg_catalog WHAT NAME OWNER": a grant on one of
 * pg_catalog's objects; *what points to "WHAT NAME OWNER". */
static bool catalog_acl(const char *line, const char **what)
{
	int at = -1;

	if (sscanf(line, "%*d; %*u %*u ACL pg_catalog %n", &at) != 0 || at < 0)
		return false;
	*what = line + at;
	return true;
}

/* The kept lines of the list into dir/toc.list; the names of the ones
 * left out into skipped. Returns how many were left out, -1 on error. */
static int filter(char **path, dgm_buf *skipped, char *toc, const char *dir, dgm_error *err)
{
	dgm_buf keep = DGM_BUF_INIT;
	int n = 0;

	for (char *line = strtok(toc, "\n"); line; line = strtok(NULL, "\n")) {
		const char *what;

		if (!catalog_acl(line, &what)) {
			dgm_buf_printf(&keep, "%s\n", line);
			continue;
		}
		if (n++ < 4)
			dgm_buf_printf(skipped, "%s%.*s", n > 1 ? ", " : "",
				       (int)(strrchr(what, ' ') ? strrchr(what, ' ') - what : (long)strlen(what)),
				       what);
	}
	if (n) {
		*path = dgm_xasprintf("%s/toc.list", dir);
		if (dgm_fs_write_atomic(*path, keep.ptr ? keep.ptr : "", keep.len, 0600, err)) {
			free(*path);
			*path = NULL;
			n = -1;
		}
	}
	dgm_buf_free(&keep);
	return n;
}

int dgm_snapshot_toc_for_role(char **list, const char *dump, const char *dir, bool super,
			      dgm_error *err)
{
	const char *argv[] = { "pg_restore", "--list", dump, NULL };
	dgm_buf toc = DGM_BUF_INIT, skipped = DGM_BUF_INIT;
	dgm_child c = { .argv = argv, .out = &toc, .timeout_ms = 120000 };
	int n;

	*list = NULL;
	if (super)
		return 0;
	if (dgm_run(&c, err)) {
		dgm_buf_free(&toc);
		dgm_error_prefix(err, "cannot list the dump's contents");
		return -1;
	}
	n = toc.ptr ? filter(list, &skipped, toc.ptr, dir, err) : 0;
	if (n > 0)
		dgm_warn("not restoring %d grant%s on PostgreSQL's own functions (%s%s): only a "
			 "superuser may give them; a superuser can give them again in the restored "
			 "database (GRANT EXECUTE ON FUNCTION ... TO ...)", n, n == 1 ? "" : "s",
			 dgm_buf_cstr(&skipped), n > 4 ? ", ..." : "");
	dgm_buf_free(&toc);
	dgm_buf_free(&skipped);
	return n < 0 ? -1 : 0;
}
