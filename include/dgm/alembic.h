/*
 * alembic.h - what Alembic will do, worked out without running Python.
 *
 * dgmigrate reads alembic.ini and the revision files as text (never
 * executing them), builds the revision graph the way Alembic 1.8's
 * RevisionMap does, and answers the questions a release needs: which
 * revisions the code holds, the heads, and which revisions
 * `alembic upgrade TARGET` / `alembic downgrade TARGET` run from a given
 * set of applied heads, in Alembic's own order, and what alembic_version
 * holds afterwards.
 *
 * The port follows alembic/script/revision.py (RevisionMap) and
 * alembic/runtime/migration.py (HeadMaintainer) line by line where the
 * order matters. Where Alembic's order comes from a Python set (and so
 * changes from one run to the next) a fixed order is used instead; see
 * the notes at dgm_alembic_load_opts and dgm_alembic_rev.
 *
 * Errors are DGM_E_ALEMBIC (graph, resolution, revision files) or
 * DGM_E_IO (reading the tree); messages that concern a file start with
 * "FILE:LINE: " (FILE relative to the tree root).
 */
#ifndef DGM_ALEMBIC_H
#define DGM_ALEMBIC_H

#include <stdbool.h>
#include <stddef.h>

#include "dgm/error.h"
#include "dgm/tree.h"

/* ---- alembic.ini ------------------------------------------------------ */

/* A parsed ini file with configparser semantics (sections, `key = value`
 * and `key: value`, indented continuation lines, full-line `#`/`;`
 * comments, a [DEFAULT] section, case-insensitive keys, %(name)s
 * interpolation with `%%` for a percent sign). */
typedef struct dgm_alembic_ini dgm_alembic_ini;

/* Parse TEXT; `name` is used in messages. `here` is the value of the
 * `here` default (Alembic: the ini file's absolute folder). */
int dgm_alembic_ini_parse(dgm_alembic_ini **out, const char *name, const char *here,
			  const char *text, size_t len, dgm_error *err);
/* The interpolated value of KEY in SECTION (or [DEFAULT]) in *value
 * (malloc'd), or NULL when absent. */
int dgm_alembic_ini_get(char **value, const dgm_alembic_ini *ini, const char *section,
			const char *key, dgm_error *err);
bool dgm_alembic_ini_has_section(const dgm_alembic_ini *ini, const char *section);
void dgm_alembic_ini_free(dgm_alembic_ini *ini);

/* How to read a project. All members may be left zero. */
typedef struct dgm_alembic_load_opts {
	/* The ini section Alembic reads (alembic -n NAME); NULL: "alembic". */
	const char *section;
	/* The folder alembic runs in, relative to the tree root: relative
	 * paths in alembic.ini are relative to it (as Alembic resolves them
	 * against its working folder). NULL: the ini file's folder. */
	const char *cwd;
	/* The absolute path of the tree root as Alembic sees it on disk.
	 * `%(here)s` expands to it plus the ini's folder, and absolute paths
	 * in alembic.ini must lie under it (they are made relative). NULL:
	 * the tree root plays the part of "/" (`%(here)s` = "/" + folder,
	 * absolute paths are read as relative to the tree root). */
	const char *root_on_disk;
	/* Order of files within a version folder, which decides Alembic's
	 * order between revisions that do not depend on each other (which
	 * head `heads` lists first, which branch upgrades first).
	 * false: the tree's own listing order - on the file system that is
	 * readdir() order, exactly what Alembic 1.8's os.listdir() sees.
	 * true: sorted by name, as Alembic >= 1.10 does. */
	bool sort_files;
	/* How the command at hand lets Alembic itself read the graph, named
	 * in the hint when a value cannot be read as text (e.g.
	 * "--read-with-alembic"). NULL: every way is named. */
	const char *ask_alembic;
} dgm_alembic_load_opts;

/* The script settings alembic.ini gives. Paths are normalized and
 * relative to the tree root ("" is the root). */
typedef struct dgm_alembic_config {
	char *ini_path;
	char *script_location;
	char **version_locations;  /* folders searched, in order */
	size_t nversion_locations;
	/* true when version_locations was set: folders that do not exist
	 * are skipped (Alembic checks os.path.exists); otherwise the one
	 * folder is script_location/versions and must exist */
	bool explicit_locations;
	bool recursive;            /* recursive_version_locations (Alembic >= 1.10) */
	bool sourceless;           /* sourceless = true */
	char **sys_path;           /* prepend_sys_path folders, in order */
	size_t nsys_path;
} dgm_alembic_config;

/* Read the settings from ini text (INI_PATH is its tree-relative path). */
int dgm_alembic_config_parse(dgm_alembic_config *cfg, const char *ini_path, const char *text,
			     size_t len, const dgm_alembic_load_opts *opts, dgm_error *err);
void dgm_alembic_config_free(dgm_alembic_config *cfg);

/* ---- one revision file ------------------------------------------------ */

/* What a revision file declares at module level, read as text.
 * Lines are 1-based; 0 means "not assigned". */
typedef struct dgm_alembic_revfile {
	char *path;              /* as given, for messages */
	char *revision;          /* NULL: not assigned (see revision_from_name) */
	int revision_line;
	bool revision_from_name; /* taken from a legacy "<hex>.py" file name */
	bool has_down;           /* down_revision assigned (None counts) */
	char **down;             /* down_revision: empty for None */
	size_t ndown;
	int down_line;
	char **depends;          /* depends_on, as written (ids or labels) */
	size_t ndepends;
	int depends_line;
	char **labels;           /* branch_labels */
	size_t nlabels;
	int labels_line;
	char *doc;               /* first paragraph of the docstring, "" none */
} dgm_alembic_revfile;

/* Parse the text of a revision file. `path` names it in messages; its
 * last component is used for Alembic's legacy "<hex>.py" rule. Errors:
 * a value that is not a literal, no `revision`, no `down_revision`,
 * a revision id holding '@', '-' or '+', a revision that is its own
 * down_revision or dependency. */
int dgm_alembic_revfile_parse(dgm_alembic_revfile *rf, const char *path, const char *text,
			      size_t len, dgm_error *err);
void dgm_alembic_revfile_free(dgm_alembic_revfile *rf);

/* Where revision files find the project's modules: a value may be a
 * name (`X`, `mod.X`, `pkg.mod.X`), or a tuple or list of them, bound
 * at the top level of the revision file by an assignment or an import;
 * the module is looked up as Python would, under the folder above the
 * revision file's outermost package and the SYS_PATH folders (tree
 * paths), read as text through TREE, and its top-level assignment of a
 * literal (or of another such name, a few levels deep) is the value.
 * Modules read are kept for the next files. */
typedef struct dgm_alembic_pyenv dgm_alembic_pyenv;

dgm_alembic_pyenv *dgm_alembic_pyenv_new(dgm_tree *tree, char *const *sys_path, size_t n);
void dgm_alembic_pyenv_free(dgm_alembic_pyenv *env);
/* How to let Alembic read the graph, for hints (see
 * dgm_alembic_load_opts.ask_alembic); the string must outlive env. */
void dgm_alembic_pyenv_set_ask(dgm_alembic_pyenv *env, const char *ask_alembic);
/* dgm_alembic_revfile_parse, resolving names through ENV (NULL: only
 * names assigned in the file itself). A name that cannot be read
 * statically is an error naming the file, line and name. */
int dgm_alembic_revfile_parse_in(dgm_alembic_revfile *rf, const char *path, const char *text,
				 size_t len, dgm_alembic_pyenv *env, dgm_error *err);

/* ---- the graph -------------------------------------------------------- */

typedef struct dgm_alembic_rev dgm_alembic_rev;

struct dgm_alembic_rev {
	char *id;
	char *path;                /* tree-relative file */
	int line;                  /* line of the `revision =` assignment */
	int down_line, depends_line, labels_line; /* 0: not assigned */
	char *doc;                 /* message: first paragraph of the docstring */
	char **down;               /* down_revision ids, as declared */
	size_t ndown;
	char **depends;            /* depends_on as declared (ids or labels) */
	size_t ndepends;
	char **labels;             /* branch_labels declared here */
	size_t nlabels;

	/* Computed when the graph is built. */
	size_t index;              /* load order */
	const dgm_alembic_rev **deps;  /* depends_on resolved to revisions */
	size_t ndeps;
	const dgm_alembic_rev **children; /* revisions whose down_revision is this one */
	size_t nchildren;
	/* Declared labels plus those Alembic spreads along the branch.
	 * Alembic keeps them in a set: its printed order varies. */
	const char **branch_labels;
	size_t nbranch_labels;
	bool is_base;              /* down_revision is None */
	bool is_head;              /* no revision has it as down_revision */
	bool is_real_head;         /* ... nor in depends_on */
	bool is_branch_point;      /* two or more children */
	bool is_merge_point;       /* two or more down_revisions */
};

struct dgm_alembic_graph;

/* The revisions of a project and their graph. Read-only after build. */
typedef struct dgm_alembic_script {
	dgm_alembic_config config;      /* zero when built by hand */
	dgm_alembic_rev **revs;         /* in load order */
	size_t count;
	/* `alembic heads`: revisions no down_revision points at, in load
	 * order. */
	dgm_alembic_rev **heads;
	size_t nheads;
	/* What the symbol `heads` resolves to: heads that nothing depends on
	 * either (Alembic's _real_heads); `upgrade heads` targets these. */
	dgm_alembic_rev **real_heads;
	size_t nreal_heads;
	dgm_alembic_rev **bases;        /* down_revision None, load order */
	size_t nbases;
	struct dgm_alembic_graph *graph; /* private */
	/* Loaded by running Alembic (dgm_project_load_graph_alembic), not
	 * read as text: shown as "read by Alembic". */
	bool read_by_alembic;
} dgm_alembic_script;

/* Load a project: ini -> version folders -> files -> graph. INI_PATH is
 * relative to the tree root. opts may be NULL. */
int dgm_alembic_load(dgm_alembic_script **out, dgm_tree *tree, const char *ini_path,
		     const dgm_alembic_load_opts *opts, dgm_error *err);

/* Build a graph by hand (tests, tools): new, add files, then build.
 * add takes the revfile's contents (rf is zeroed). */
dgm_alembic_script *dgm_alembic_script_new(void);
void dgm_alembic_script_add(dgm_alembic_script *s, dgm_alembic_revfile *rf);
/* Parse TEXT as the revision file PATH and add it. */
int dgm_alembic_script_add_text(dgm_alembic_script *s, const char *path, const char *text,
				dgm_error *err);
/* Link the revisions: map, labels, depends_on, heads, bases, cycle
 * checks. Errors: duplicate revision id (both files named), a
 * down_revision or depends_on that points nowhere, a branch label used
 * twice, a cycle. */
int dgm_alembic_script_build(dgm_alembic_script *s, dgm_error *err);
void dgm_alembic_free(dgm_alembic_script *s);

/* The revision with exactly this id, or NULL. */
const dgm_alembic_rev *dgm_alembic_find(const dgm_alembic_script *s, const char *id);

/* ---- resolving identifiers -------------------------------------------- */

/* Resolve an identifier as Alembic's get_revisions() does: a full id, a
 * unique prefix, `head`, `heads`, `base`, a branch label, LABEL@head,
 * LABEL@heads, LABEL@ID, `-N` / LABEL@-N (down from the heads). The
 * result (*out, malloc'd, *n entries) is empty for `base`. Errors
 * follow Alembic: "multiple head revisions are present for given
 * argument 'head'", "no such revision or branch 'x'", "multiple
 * revisions start with 'ab': ...". */
int dgm_alembic_resolve(const dgm_alembic_rev ***out, size_t *n, const dgm_alembic_script *s,
			const char *id, dgm_error *err);
/* One revision, as get_revision(): NULL in *out for `base`; an
 * identifier that names several revisions is an error. */
int dgm_alembic_resolve_one(const dgm_alembic_rev **out, const dgm_alembic_script *s,
			    const char *id, dgm_error *err);

/* ---- upgrade and downgrade -------------------------------------------- */

/* Revisions in the order Alembic runs them, and alembic_version after. */
typedef struct dgm_alembic_steps {
	bool upgrade;
	const dgm_alembic_rev **revs;
	size_t count;
	const dgm_alembic_rev **heads_after; /* in load order */
	size_t nheads_after;
} dgm_alembic_steps;

/* `alembic upgrade TARGET` with CURRENT (ncurrent ids: the rows of
 * alembic_version, or for `--sql A:B` the one revision A; none = base).
 * TARGET is anything Alembic accepts: heads, head, ID, LABEL@head,
 * +N, LABEL@+N, ID+N, ... */
int dgm_alembic_upgrade(dgm_alembic_steps *out, const dgm_alembic_script *s,
			const char *const *current, size_t ncurrent, const char *target,
			dgm_error *err);
/* `alembic downgrade TARGET` from CURRENT: base, ID, -N, LABEL@-N,
 * LABEL@ID, ID-N, ... */
int dgm_alembic_downgrade(dgm_alembic_steps *out, const dgm_alembic_script *s,
			  const char *const *current, size_t ncurrent, const char *target,
			  dgm_error *err);
/* `alembic history -r BASE:HEAD` order (newest first); NULL means
 * "base" / "heads". heads_after is left empty. */
int dgm_alembic_history(dgm_alembic_steps *out, const dgm_alembic_script *s, const char *base,
			const char *head, dgm_error *err);
void dgm_alembic_steps_free(dgm_alembic_steps *st);

#endif
