/*
 * dump.h - the database half of a snapshot: the real pg_dump and
 * pg_restore as child processes. Credentials reach them through their
 * environment (PGPASSWORD...), never argv.
 */
#ifndef DGM_DUMP_H
#define DGM_DUMP_H

#include <signal.h>

#include "dgm/error.h"
#include "dgm/plan.h"

typedef struct dgm_dump_info {
	char pg_dump_version[32];  /* "15.18" */
	char server_version[32];
	char database[128];
	int toc_entries;           /* entries pg_restore --list reads back */
	long long bytes;           /* size on disk */
	long ms;                   /* wall time of pg_dump */
} dgm_dump_info;

typedef struct dgm_dump_opts {
	const char *url;
	const char *dbname;        /* dump this database of url's server instead */
	const char *dest;          /* final path: a folder (-Fd) or a file (-Fc) */
	dgm_dump_format format;
	int jobs;
	int compression;
	long timeout_ms;
	const volatile sig_atomic_t *cancel; /* stops pg_dump when set */
} dgm_dump_opts;

/* Major.minor of a client binary ("pg_dump"), from --version. */
int dgm_dump_tool_version(char *out, size_t len, const char *tool, dgm_error *err);

/* Dump into dest.partial, check it reads back with pg_restore --list,
 * flush every file, rename to dest. A failed or killed dump leaves no
 * dest behind (a stale .partial is removed by the next run). */
int dgm_dump_create(dgm_dump_info *info, const dgm_dump_opts *o, dgm_error *err);

/* pg_restore --list of a dump: number of TOC entries, or an error. */
int dgm_dump_list(int *entries, const char *path, dgm_dump_format format, dgm_error *err);

#endif
