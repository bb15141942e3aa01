/*
 * plan.h - the release plan: one YAML file says everything about a
 * release (PRODUCT.md, "The release plan").
 *
 * dgm_plan_load() parses the file with libyaml, expands ${VAR} from the
 * environment, resolves relative paths against the plan's own folder,
 * and validates strictly: unknown keys (with the nearest valid key
 * suggested), wrong types, missing required keys, bad durations and
 * sizes are DGM_E_PLAN errors whose message starts with
 * "FILE:LINE:COLUMN: " (1-based, FILE as given) and whose hint says the
 * fix. plans/example.yaml documents the format.
 *
 * Values: integers and booleans (true/false only) are read from the
 * text of the scalar, quoted or not; an empty value (`key:`, `~`,
 * `null`) is an error, not a default. Durations are a bare 0 or units
 * largest first: 500ms, 30s, 5m, 2h, 1h30m. Sizes follow GNU coreutils:
 * a bare number is bytes, k/KiB, M/MiB, G/GiB, T/TiB are powers of 1024
 * and KB, MB, GB, TB powers of 1000 (units are case-insensitive).
 * Variable values never appear in messages: a message quotes the value
 * as written in the plan, before expansion.
 */
#ifndef DGM_PLAN_H
#define DGM_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/error.h"

typedef struct dgm_strlist {
	char **items;             /* items[count] is NULL, so a list is an argv */
	size_t count;
} dgm_strlist;

/* Where a key's value was written, so that later checks (validate,
 * preflight) can point at the plan line. */
typedef struct dgm_plan_mark {
	char *key;                /* "release.repository", "postconditions.tables[0]" */
	int line;                 /* 1-based */
	int column;               /* 1-based */
} dgm_plan_mark;

typedef enum dgm_dump_format {
	DGM_DUMP_DIRECTORY = 0,   /* pg_dump -Fd, parallel with -j */
	DGM_DUMP_CUSTOM           /* pg_dump -Fc */
} dgm_dump_format;

/* What a rollback keeps of the state it replaces (its safety snapshot's
 * database part): a server-side copy (CREATE DATABASE ... TEMPLATE,
 * seconds; needs no other session on the database, else it falls back
 * to a dump) or always a pg_dump. */
typedef enum dgm_rollback_safety {
	DGM_SAFETY_COPY = 0,
	DGM_SAFETY_DUMP
} dgm_rollback_safety;

/* snapshot.engine: how a snapshot keeps the database. */
typedef enum dgm_snapshot_engine {
	DGM_ENGINE_DUMP = 0,      /* pg_dump (and server-side copies) */
	DGM_ENGINE_PGBACKREST     /* a named restore point in pgBackRest's WAL archive */
} dgm_snapshot_engine;

/* pgbackrest.backup: taken before the restore point, or none. */
typedef enum dgm_pgbr_backup {
	DGM_PGBR_BACKUP_NONE = 0,
	DGM_PGBR_BACKUP_INCR,
	DGM_PGBR_BACKUP_DIFF,
	DGM_PGBR_BACKUP_FULL
} dgm_pgbr_backup;

/* pgbackrest.restore: a point-in-time restore of the whole cluster, or
 * of the one database into a side instance, moved over from there. */
typedef enum dgm_pgbr_restore {
	DGM_PGBR_RESTORE_SIDE = 0,
	DGM_PGBR_RESTORE_CLUSTER
} dgm_pgbr_restore;

/* The plan's pgbackrest: section (snapshot.engine: pgbackrest). */
typedef struct dgm_plan_pgbackrest {
	char *stanza;
	char *config;             /* absolute; --config; NULL: pgbackrest's default */
	dgm_strlist command;      /* argv prefix, default [pgbackrest] (e.g.
				   * [runuser, -u, postgres, --, pgbackrest]) */
	dgm_strlist options;      /* passed to every pgbackrest call, "--name=value" */
	int backup;               /* dgm_pgbr_backup, default none */
	int restore;              /* dgm_pgbr_restore, default side */
	long archive_timeout_ms;  /* wait for the restore point's WAL, default 60 s */
	char *repo_path;          /* absolute; a posix repository checked for room */
	long long min_free_bytes; /* room the repository must have, default 1 GiB */
	dgm_strlist server_stop;  /* restore: cluster */
	dgm_strlist server_start;
	bool rewind_other_databases; /* restore: cluster with other databases */
	char *side_directory;     /* absolute; default <state_dir>/pgbackrest-side */
	int side_port;            /* 0: the server's port + 1 */
	dgm_strlist pg_ctl;       /* argv prefix, default [pg_ctl] */
} dgm_plan_pgbackrest;

/* alembic.read_graph: how the revision graph is read. */
typedef enum dgm_read_graph {
	DGM_READ_GRAPH_STATIC = 0,  /* as text, never running the project's code */
	DGM_READ_GRAPH_ALEMBIC      /* by alembic.command's Python (imports the code) */
} dgm_read_graph;

typedef enum dgm_on_failure {
	DGM_ON_FAILURE_ROLLBACK = 0,
	DGM_ON_FAILURE_STOP
} dgm_on_failure;

typedef struct dgm_plan_hook {
	char *name;               /* for logs and the report */
	dgm_strlist argv;         /* run as is, never through a shell */
	long timeout_ms;
} dgm_plan_hook;

typedef struct dgm_plan_hooks {
	dgm_plan_hook *items;
	size_t count;
} dgm_plan_hooks;

typedef struct dgm_plan {
	char *path;               /* the plan file as given */
	char *dir;                /* absolute folder of the plan file */
	int version;              /* plan format version, 1 */

	struct {
		char *name;           /* human name of the release */
		char *repository;     /* absolute path of the app's git work tree */
		char *tag;            /* tag to deploy */
		bool allow_dirty;     /* allow uncommitted changes in the work tree */
	} release;

	struct {
		char *url;            /* libpq URL; may hold a password: never log it */
	} database;

	struct {
		char *config;         /* absolute path of alembic.ini */
		dgm_strlist command;  /* argv prefix, default ["alembic"] */
		char *target;         /* target revision, default "heads" */
		char *version_table;  /* default "alembic_version" */
		char *version_schema; /* NULL: search_path */
		dgm_strlist env;      /* "NAME=value" set for alembic; values may
				       * hold ${target.*} (dgm_plan_target_expand) */
		dgm_strlist x;        /* `-x` arguments, the same placeholders but
				       * never ${target.password} or ${target.url} */
		int read_graph;       /* dgm_read_graph, default static */
	} alembic;

	struct {
		char *directory;      /* absolute; where snapshots go */
		dgm_dump_format format;
		int jobs;             /* pg_dump -j, default 2 */
		int compression;      /* 0-9, default 1 */
		int keep;             /* retention: snapshots kept, default 5 */
		long long min_free_bytes; /* refuse to snapshot below this, default 1 GiB */
		dgm_rollback_safety rollback_safety; /* default DGM_SAFETY_COPY */
		int keep_copies;      /* newest snapshots that keep a server-side
				       * copy beside their dump, default 1 */
		bool allow_no_restore; /* apply even when this role could not
				       * restore the snapshot (preflight says) */
		char *key_file;       /* absolute; the HMAC key snapshots are signed
				       * with; NULL: <state_dir>/snapshot.key */
		int engine;           /* dgm_snapshot_engine, default dump */
	} snapshot;

	dgm_plan_pgbackrest pgbackrest;

	struct {
		char *path;           /* absolute; the model store folder */
		int level;            /* zstd level 1-19, default 3 */
		int threads;          /* zstd worker threads, default 0 (in-thread) */
		dgm_strlist extra_paths; /* absolute; other paths archived with it */
	} model_store;

	dgm_strlist required_env;     /* names of variables that must be set */
	dgm_strlist secret_env;       /* names whose values are never printed */

	struct {
		dgm_strlist tables;
		dgm_strlist indexes;
		bool foreign_keys_validated; /* default true */
		bool analyze;                /* default true */
	} postconditions;

	struct {
		dgm_plan_hooks before;
		dgm_plan_hooks after;
	} hooks;

	struct {
		char *url;            /* NULL: no health check */
		long timeout_ms;      /* overall deadline, default 60 s */
		long interval_ms;     /* between tries, default 2 s */
		int retries;          /* default 10 */
	} health_check;

	struct {
		long lock_ms;         /* PostgreSQL lock_timeout, default 5 s */
		long statement_ms;    /* statement_timeout, default 0 (none) */
		long snapshot_ms;     /* per step; 0 means no limit */
		long migrate_ms;
		long restore_ms;
		long hook_ms;         /* default for hooks without their own */
	} timeouts;

	struct {
		int fail_on;          /* a dgm_lint_severity; default error */
		dgm_strlist ignore;   /* rule names not reported */
		long long error_bytes; /* a lock or rewrite on a table this big is an
				       * error; default 1 GiB */
	} lint;

	dgm_on_failure on_failure;    /* default rollback */
	char *state_dir;              /* absolute; journal, reports; default <snapshot.directory>/state */

	dgm_plan_mark *marks;         /* every key given in the file, in file order */
	size_t nmarks;
} dgm_plan;

/* Parse, expand, resolve and validate PATH into *plan (zeroed first).
 * On failure *plan holds nothing to free. */
int dgm_plan_load(dgm_plan *plan, const char *path, dgm_error *err);

/* Same, from text in memory; `name` is used in messages as the file
 * name and `dir` as the folder relative paths are resolved against. */
int dgm_plan_parse(dgm_plan *plan, const char *name, const char *dir,
		   const char *text, size_t len, dgm_error *err);

void dgm_plan_free(dgm_plan *plan);

/* Fail (DGM_E_PLAN) naming every unset variable of environment.required
 * in one message; values are never part of any message. An empty value
 * counts as unset. */
int dgm_plan_check_env(const dgm_plan *plan, dgm_error *err);

/* Fail (DGM_E_PLAN) when a secret variable's value would end up in a
 * child's argv (alembic.command, hooks[].run): argv is world-readable in
 * /proc. Children inherit the environment; they read secrets from it. */
int dgm_plan_check_argv_secrets(const dgm_plan *plan, dgm_error *err);

/* Whether the variable name looks secret (*PASSWORD*, *PASSWD*,
 * *SECRET*, *TOKEN*, *KEY*, *CREDENTIAL*, any case). */
bool dgm_plan_name_looks_secret(const char *name);
/* Whether the plan makes the variable secret: listed in
 * environment.secret, or required with a name that looks secret. */
bool dgm_plan_is_secret_var(const dgm_plan *plan, const char *name);

/* Register the secret values the plan names with the log redaction: the
 * database URL's password, the secret variables' values, and the
 * password of any URL held by a required or secret variable. Other
 * required values are settings, shown as they are. */
void dgm_plan_register_secrets(const dgm_plan *plan);

/* Where KEY ("release.repository", "hooks.before[0].run") was written;
 * NULL when the file did not give it (a default). */
const dgm_plan_mark *dgm_plan_where(const dgm_plan *plan, const char *key);

/* Prefix err's message with "FILE:LINE:COLUMN" of KEY (just "FILE" when
 * KEY was defaulted), for errors found after parsing, e.g.
 *   plans/x.yaml:4:15: repository '/srv/app' does not exist          */
void dgm_plan_error_at(const dgm_plan *plan, const char *key, dgm_error *err);

/* The database a command aims alembic at: the plan's in apply, rollback
 * and resume, the scratch copy in rehearse. url and password are
 * secrets. */
typedef struct dgm_plan_target {
	const char *url;
	const char *host;         /* a unix-socket folder stays a path */
	const char *port;
	const char *user;
	const char *password;     /* NULL: none */
	const char *dbname;
} dgm_plan_target;

/* A value of alembic.env or alembic.x with ${target.url}, ${target.host},
 * ${target.port}, ${target.user}, ${target.password}, ${target.dbname}
 * replaced (NULL parts by "") and "$${" turned into "${". malloc'd. */
char *dgm_plan_target_expand(const char *s, const dgm_plan_target *t);

/* Parse "500ms", "30s", "5m", "2h", "1h30m", "0" into milliseconds.
 * Units are ms, s, m, h, each at most once, largest first; a number
 * without a unit is allowed only for 0. Returns 0 or -1. */
int dgm_parse_duration(const char *s, long *ms);
/* Parse "512MiB", "1GiB", "100MB", "4096" (bytes) into bytes: k, KiB,
 * M, MiB, G, GiB, T, TiB are powers of 1024, KB, MB, GB, TB powers of
 * 1000, B is bytes; case-insensitive. Returns 0 or -1. */
int dgm_parse_size(const char *s, long long *bytes);

void dgm_strlist_free(dgm_strlist *l);

#endif
