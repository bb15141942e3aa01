/* test_archive.c - the model-store archive: round trips through real
 * libarchive on temporary folders, verification against a damaged
 * archive or manifest, hostile archives on restore, permissions and
 * memory.
 *
 * DGM_TEST_SMALL=1 makes the data smaller and skips the memory test
 * (for runs under valgrind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "dgm/archive.h"
#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/run.h"

#define T0 1600000000
#define NAME_150 "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" \
		 "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn150.json"

static char *sandbox;
static int case_no;

static bool small(void)
{
	return getenv("DGM_TEST_SMALL") != NULL;
}

/* --- building trees ---------------------------------------------------- */

static char *join(const char *a, const char *b)
{
	return dgm_xasprintf("%s/%s", a, b);
}

/* A fresh folder for one test. */
static char *new_case(const char *name)
{
	char *dir = dgm_xasprintf("%s/%02d-%s", sandbox, ++case_no, name);

	assert_int_equal(mkdir(dir, 0700), 0);
	return dir;
}

static void set_meta(const char *path, mode_t mode, time_t mtime)
{
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };

	if (mode)
		assert_int_equal(chmod(path, mode), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void put_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
		     time_t mtime)
{
	char *path = join(dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	set_meta(path, mode, mtime);
	free(path);
}

static void put_str(const char *dir, const char *name, const char *s, mode_t mode, time_t mtime)
{
	put_file(dir, name, s, strlen(s), mode, mtime);
}

static void put_dir(const char *dir, const char *name)
{
	char *path = join(dir, name);

	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
}

static void put_link(const char *dir, const char *name, const char *target, time_t mtime)
{
	char *path = join(dir, name);

	assert_int_equal(symlink(target, path), 0);
	set_meta(path, 0, mtime);
	free(path);
}

static void fill_random(unsigned char *p, size_t n, uint64_t *seed)
{
	for (size_t i = 0; i < n; i++) {
		*seed ^= *seed << 13;
		*seed ^= *seed >> 7;
		*seed ^= *seed << 17;
		p[i] = (unsigned char)(*seed >> 24);
	}
}

/* The generated model store: binary files over several blocks, hundreds
 * of small JSON files in nested folders, symlinks (relative, dangling),
 * an empty folder, a read-only folder, UTF-8, non-UTF-8 and 150-byte
 * names, modes 0600/0644/0755/0444, fixed mtimes. */
static void build_store(const char *root)
{
	size_t big = small() ? (1 << 20) + 12345 : 3 * (1 << 20) + 12345;
	unsigned char *data = dgm_xmalloc(big);
	uint64_t seed = 42;
	char name[64], body[128];

	assert_int_equal(mkdir(root, 0700), 0);
	put_dir(root, "bin");
	fill_random(data, big, &seed);
	put_file(root, "bin/weights.bin", data, big, 0600, T0 + 1);
	put_file(root, "bin/empty.bin", "", 0, 0644, T0 + 2);
	put_dir(root, "json");
	for (int g = 0; g < 10; g++) {
		snprintf(name, sizeof(name), "json/g%d", g);
		put_dir(root, name);
		for (int i = 0; i < (small() ? 5 : 30); i++) {
			snprintf(name, sizeof(name), "json/g%d/m%03d.json", g, i);
			snprintf(body, sizeof(body), "{\"model\": %d, \"group\": %d}\n", i, g);
			put_str(root, name, body, 0644, T0 + 100 + i);
		}
	}
	put_dir(root, "a");
	put_dir(root, "a/b");
	put_dir(root, "a/b/c");
	put_str(root, "a/b/c/deep.txt", "deep\n", 0644, T0 + 3);
	put_link(root, "latest", "bin/weights.bin", T0 + 4);
	put_link(root, "dangling", "../nowhere", T0 + 5);
	put_dir(root, "empty");
	put_str(root, "mod\xc3\xa8le_\xc3\xa9t\xc3\xa9.json", "{}\n", 0644, T0 + 6);
	put_str(root, "\xff\xfe-raw.bin", "raw\n", 0644, T0 + 7);
	put_str(root, NAME_150, "{\"long\": true}\n", 0644, T0 + 8);
	put_str(root, "run.sh", "#!/bin/sh\necho hi\n", 0755, T0 + 9);
	put_dir(root, "ro");
	put_str(root, "ro/frozen.txt", "frozen\n", 0444, T0 + 10);
	/* folders last, deepest first: adding entries moves their mtime */
	for (int g = 0; g < 10; g++) {
		snprintf(name, sizeof(name), "%s/json/g%d", root, g);
		set_meta(name, 0755, T0 + 20 + g);
	}
	static const char *const dirs[] = { "a/b/c", "a/b", "a", "json", "bin", "empty", "ro" };
	static const mode_t modes[] = { 0755, 0750, 0755, 0755, 0700, 0700, 0555 };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char *p = join(root, dirs[i]);

		set_meta(p, modes[i], T0 + 40 + (time_t)i);
		free(p);
	}
	set_meta(root, 0755, T0 + 50);
	free(data);
}

/* --- comparing trees --------------------------------------------------- */

static bool same_content(const char *a, const char *b)
{
	dgm_buf x = DGM_BUF_INIT, y = DGM_BUF_INIT;
	bool same = !dgm_buf_read_file(&x, a, NULL) && !dgm_buf_read_file(&y, b, NULL) &&
		    x.len == y.len && !memcmp(x.ptr, y.ptr, x.len);

	dgm_buf_free(&x);
	dgm_buf_free(&y);
	return same;
}

static bool same_link(const char *a, const char *b)
{
	char x[4096], y[4096];
	ssize_t n = readlink(a, x, sizeof(x)), m = readlink(b, y, sizeof(y));

	return n >= 0 && n == m && !memcmp(x, y, (size_t)n);
}

static bool differ(const char *what, const char *a)
{
	print_error("trees differ at '%s': %s\n", a, what);
	return false;
}

static bool same_tree(const char *a, const char *b);

static bool same_children(const char *a, const char *b)
{
	struct dirent **la = NULL, **lb = NULL;
	int na = scandir(a, &la, NULL, alphasort), nb = scandir(b, &lb, NULL, alphasort);
	bool same = na == nb && na >= 0;

	for (int i = 0; same && i < na; i++) {
		if (strcmp(la[i]->d_name, lb[i]->d_name))
			same = differ(lb[i]->d_name, a);
		else if (strcmp(la[i]->d_name, ".") && strcmp(la[i]->d_name, "..")) {
			char *ca = join(a, la[i]->d_name), *cb = join(b, lb[i]->d_name);

			same = same_tree(ca, cb);
			free(ca);
			free(cb);
		}
	}
	if (na != nb)
		differ("number of entries", a);
	for (int i = 0; i < na; i++)
		free(la[i]);
	for (int i = 0; i < nb; i++)
		free(lb[i]);
	free(la);
	free(lb);
	return same;
}

/* Type, mode, mtime, size and bytes, link targets, and the same names
 * in every folder (so empty folders count). */
static bool same_tree(const char *a, const char *b)
{
	struct stat sa, sb;

	if (lstat(a, &sa) || lstat(b, &sb))
		return differ("missing", a);
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
		return differ("type", a);
	if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
		return differ("mode", a);
	if (sa.st_mtime != sb.st_mtime)
		return differ("mtime", a);
	if (S_ISREG(sa.st_mode))
		return (sa.st_size == sb.st_size && same_content(a, b)) || differ("content", a);
	if (S_ISLNK(sa.st_mode))
		return same_link(a, b) || differ("link target", a);
	return same_children(a, b);
}

static void run_ok(const char *const *argv)
{
	dgm_child c = { .argv = argv, .timeout_ms = 60000 };
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_run(&c, &err))
		fail_msg("%s", err.msg);
}

/* cp -a: a pristine witness of a tree. */
static void copy_tree(const char *from, const char *to)
{
	const char *argv[] = { "cp", "-a", from, to, NULL };

	run_ok(argv);
}

static size_t count_glob(const char *pattern)
{
	glob_t g;
	size_t n;

	if (glob(pattern, 0, NULL, &g) != 0)
		return 0;
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

/* --- fixtures: one store and its archive, made once ---------------------- */

static char *store_dir, *archive_path, *manifest_path;
static int progress_calls;
static long long progress_done, progress_total;

static void on_progress(long long done, long long total, void *payload)
{
	progress_calls++;
	progress_done = done;
	progress_total = total;
	assert_ptr_equal(payload, &progress_calls);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/dgm-archive-test.XXXXXX";
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;

	sandbox = dgm_xstrdup(mkdtemp(tmpl));
	store_dir = join(sandbox, "models");
	archive_path = join(sandbox, "models.tar.zst");
	manifest_path = dgm_archive_manifest_path(archive_path);
	build_store(store_dir);
	dgm_archive_opts o = { .dest = archive_path, .store = store_dir, .level = 3, .threads = 2,
			       .progress = on_progress, .payload = &progress_calls };

	if (dgm_archive_create(&m, &o, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	dgm_archive_manifest_free(&m);
	return 0;
}

static int teardown(void **state)
{
	dgm_error err = DGM_ERROR_INIT;
	const char *argv[] = { "chmod", "-R", "u+rwx", sandbox, NULL };

	/* read-only folders would stop the removal of an unprivileged run */
	run_ok(argv);
	dgm_fs_remove_tree(sandbox, &err);
	free(sandbox);
	free(store_dir);
	free(archive_path);
	free(manifest_path);
	return 0;
}

static char *sha_of(const char *path)
{
	char hex[65];
	long long size;

	assert_int_equal(dgm_fs_sha256_file(hex, &size, path, NULL), 0);
	return dgm_xstrdup(hex);
}

static size_t count_files(const dgm_archive_manifest *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_entries; i++)
		n += m->entries[i].type == DGM_ARCHIVE_FILE;
	return n;
}

static void read_manifest(dgm_archive_manifest *m, const char *path)
{
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_archive_manifest_read(m, path, &err))
		fail_msg("%s", err.msg);
}

/* --- memory (first: ru_maxrss only ever grows) --------------------------- */

static void archive_memory_stays_flat_on_a_64_mib_file(void **state)
{
	char *dir, *store, *dest;
	int fds[2];
	long delta_kib = -1;
	pid_t pid;

	if (small())
		skip();
	dir = new_case("memory");
	store = join(dir, "store");
	dest = join(dir, "big.tar.zst");
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		unsigned char *chunk = dgm_xmalloc(1 << 20);
		uint64_t seed = 7;
		struct rusage before, after;
		dgm_error err = DGM_ERROR_INIT;
		/* zstd's own workers take a fixed ~35-55 MiB each (archive.h) */
		dgm_archive_opts o = { .dest = dest, .store = store, .level = 3, .threads = 0 };
		char *file = join(store, "big.bin");
		int fd;

		mkdir(store, 0700);
		fd = open(file, O_WRONLY | O_CREAT, 0600);
		for (int i = 0; i < 64; i++) {
			fill_random(chunk, 1 << 20, &seed);
			if (write(fd, chunk, 1 << 20) != 1 << 20)
				_exit(2);
		}
		close(fd);
		getrusage(RUSAGE_SELF, &before);
		if (dgm_archive_create(NULL, &o, &err))
			_exit(3);
		getrusage(RUSAGE_SELF, &after);
		delta_kib = after.ru_maxrss - before.ru_maxrss;
		if (write(fds[1], &delta_kib, sizeof(delta_kib)) != sizeof(delta_kib))
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &delta_kib, sizeof(delta_kib)), sizeof(delta_kib));
	close(fds[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	print_message("archiving 64 MiB grew the peak RSS by %ld KiB\n", delta_kib);
	assert_true(delta_kib >= 0 && delta_kib < 32 * 1024);
	/* by design: one block buffer, whatever the file's size */
	assert_true(DGM_ARCHIVE_BLOCK <= (1 << 20));
	free(dir);
	free(store);
	free(dest);
}

/* --- create and verify --------------------------------------------------- */

static void create_writes_owner_only_archive_and_full_manifest(void **state)
{
	dgm_archive_manifest m;
	dgm_buf text = DGM_BUF_INIT;
	const dgm_archive_entry *e;
	char *weights = join(store_dir, "bin/weights.bin"), *sha = sha_of(archive_path);
	char link_sha[65];
	struct stat st;

	assert_int_equal(mode_of(archive_path), 0600);
	assert_int_equal(mode_of(manifest_path), 0600);
	read_manifest(&m, manifest_path);
	assert_string_equal(m.archive_sha256, sha);
	assert_int_equal(stat(archive_path, &st), 0);
	assert_int_equal(m.archive_bytes, st.st_size);
	assert_string_equal(m.store, store_dir);
	assert_int_equal(m.n_extras, 0);
	assert_string_equal(m.entries[0].path, "store");
	assert_int_equal(m.content_bytes, dgm_fs_tree_size(store_dir));

	e = dgm_archive_manifest_find(&m, "store/bin/weights.bin");
	assert_non_null(e);
	assert_int_equal(e->type, DGM_ARCHIVE_FILE);
	assert_int_equal(e->mode, 0600);
	assert_int_equal(e->mtime, T0 + 1);
	free(sha);
	sha = sha_of(weights);
	assert_string_equal(e->sha256, sha);

	e = dgm_archive_manifest_find(&m, "store/latest");
	assert_non_null(e);
	assert_int_equal(e->type, DGM_ARCHIVE_SYMLINK);
	assert_int_equal(e->size, strlen("bin/weights.bin"));
	dgm_buf_puts(&text, "bin/weights.bin");
	{
		char hex[65];
		char *tmp = join(sandbox, "link-target");

		assert_int_equal(dgm_fs_write_atomic(tmp, text.ptr, text.len, 0600, NULL), 0);
		assert_int_equal(dgm_fs_sha256_file(hex, NULL, tmp, NULL), 0);
		strcpy(link_sha, hex);
		free(tmp);
	}
	assert_string_equal(e->sha256, link_sha);
	e = dgm_archive_manifest_find(&m, "store/empty");
	assert_true(e && e->type == DGM_ARCHIVE_DIR && e->mode == 0700 && !e->sha256[0]);
	assert_non_null(dgm_archive_manifest_find(&m, "store/\xff\xfe-raw.bin"));
	assert_non_null(dgm_archive_manifest_find(&m, "store/mod\xc3\xa8le_\xc3\xa9t\xc3\xa9.json"));
	assert_int_equal(strlen(NAME_150), 150);
	assert_non_null(dgm_archive_manifest_find(&m, "store/" NAME_150));
	assert_null(dgm_archive_manifest_find(&m, "store/nope"));
	/* pre-order, names sorted bytewise */
	for (size_t i = 1; i < m.n_entries; i++)
		if (strncmp(m.entries[i - 1].path, m.entries[i].path, strlen(m.entries[i].path)))
			assert_true(strcmp(m.entries[i - 1].path, m.entries[i].path) < 0 ||
				    strchr(m.entries[i - 1].path + strlen("store/"), '/'));
	/* the JSON keeps UTF-8 names readable and hex-encodes the others */
	dgm_buf_clear(&text);
	assert_int_equal(dgm_buf_read_file(&text, manifest_path, NULL), 0);
	assert_non_null(strstr(text.ptr, "\"path\": \"store/mod\xc3\xa8le_\xc3\xa9t\xc3\xa9.json\""));
	assert_non_null(strstr(text.ptr, "\"path_hex\": \"73746f72652ffffe2d7261772e62696e\""));
	/* progress: called, and last with done == total == the content */
	assert_true(progress_calls >= 1);
	assert_int_equal(progress_done, progress_total);
	assert_int_equal(progress_total, m.content_bytes);
	dgm_buf_free(&text);
	dgm_archive_manifest_free(&m);
	free(sha);
	free(weights);
}

static void create_is_deterministic(void **state)
{
	char *dir = new_case("determinism"), *dest = join(dir, "again.tar.zst");
	char *mpath = dgm_archive_manifest_path(dest), *a, *b;
	dgm_archive_opts o = { .dest = dest, .store = store_dir, .level = 3, .threads = 2 };
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(dgm_archive_create(NULL, &o, &err), 0);
	a = sha_of(archive_path);
	b = sha_of(dest);
	assert_string_equal(a, b);
	assert_int_equal(dgm_archive_verify(dest, NULL, &err), 0);
	free(a);
	free(b);
	free(mpath);
	free(dest);
	free(dir);
}

static void create_refuses_what_it_cannot_archive_faithfully(void **state)
{
	char *dir = new_case("refusals"), *store = join(dir, "store");
	char *dest = join(dir, "s.tar.zst"), *tmp = join(dir, "s.tar.zst.tmp");
	char *fifo = join(store, "pipe"), *inside = join(store, "in.tar.zst");
	dgm_archive_opts o = { .dest = archive_path, .store = store_dir };
	dgm_error err = DGM_ERROR_INIT;

	/* an existing archive is never overwritten */
	assert_int_equal(dgm_archive_create(NULL, &o, &err), -1);
	assert_int_equal(err.code, DGM_E_ARCHIVE);
	assert_non_null(strstr(err.msg, "already exists"));

	assert_int_equal(mkdir(store, 0755), 0);
	put_str(store, "a.json", "{}", 0644, T0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	o.dest = dest;
	o.store = store;
	assert_int_equal(dgm_archive_create(NULL, &o, &err), -1);
	assert_non_null(strstr(err.msg, "only files, folders and symlinks"));
	assert_false(exists(dest));
	assert_false(exists(tmp));
	assert_int_equal(count_glob(dest), 0);
	unlink(fifo);

	o.dest = inside;
	assert_int_equal(dgm_archive_create(NULL, &o, &err), -1);
	assert_non_null(strstr(err.msg, "inside"));

	o.dest = dest;
	o.level = 30;
	assert_int_equal(dgm_archive_create(NULL, &o, &err), -1);
	o.level = 0;

	/* a stale temp file with a loose mode does not loosen the archive */
	put_str(dir, "s.tar.zst.tmp", "stale", 0644, T0);
	assert_int_equal(dgm_archive_create(NULL, &o, &err), 0);
	assert_int_equal(mode_of(dest), 0600);
	assert_false(exists(tmp));
	free(dir);
	free(store);
	free(dest);
	free(tmp);
	free(fifo);
	free(inside);
}

static void verify_accepts_the_archive(void **state)
{
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_archive_verify(archive_path, NULL, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(dgm_archive_verify(archive_path, manifest_path, &err), 0);
}

/* A copy of the archive and its manifest in dir; returns its path. */
static char *copy_archive(const char *dir)
{
	char *dest = join(dir, "copy.tar.zst"), *mdest = dgm_archive_manifest_path(dest);
	dgm_buf b = DGM_BUF_INIT;

	assert_int_equal(dgm_buf_read_file(&b, archive_path, NULL), 0);
	assert_int_equal(dgm_fs_write_atomic(dest, b.ptr, b.len, 0600, NULL), 0);
	dgm_buf_clear(&b);
	assert_int_equal(dgm_buf_read_file(&b, manifest_path, NULL), 0);
	assert_int_equal(dgm_fs_write_atomic(mdest, b.ptr, b.len, 0600, NULL), 0);
	dgm_buf_free(&b);
	free(mdest);
	return dest;
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static void verify_catches_a_flipped_byte_anywhere(void **state)
{
	char *dir = new_case("flipped");
	struct stat st;

	assert_int_equal(stat(archive_path, &st), 0);
	const off_t where[] = { 0, 200, st.st_size / 3, st.st_size / 2, st.st_size - 1 };

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		char *copy = copy_archive(dir);
		dgm_error err = DGM_ERROR_INIT;

		flip_byte(copy, where[i]);
		assert_int_equal(dgm_archive_verify(copy, NULL, &err), -1);
		assert_int_equal(err.code, DGM_E_ARCHIVE);
		print_message("byte %lld flipped: %s\n", (long long)where[i], err.msg);
		unlink(copy);
		free(copy);
	}
	free(dir);
}

static void verify_catches_a_truncated_archive(void **state)
{
	char *dir = new_case("truncated");
	struct stat st;

	assert_int_equal(stat(archive_path, &st), 0);
	const off_t sizes[] = { 0, st.st_size / 2, st.st_size - 1 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *copy = copy_archive(dir);
		dgm_error err = DGM_ERROR_INIT;

		assert_int_equal(truncate(copy, sizes[i]), 0);
		assert_int_equal(dgm_archive_verify(copy, NULL, &err), -1);
		assert_int_equal(err.code, DGM_E_ARCHIVE);
		print_message("truncated to %lld: %s\n", (long long)sizes[i], err.msg);
		unlink(copy);
		free(copy);
	}
	free(dir);
}

/* Copy the manifest with the first occurrence of from replaced by to. */
static char *edited_manifest(const char *dir, const char *name, const char *from, const char *to)
{
	char *path = join(dir, name);
	dgm_buf b = DGM_BUF_INIT, out = DGM_BUF_INIT;
	char *hit;

	assert_int_equal(dgm_buf_read_file(&b, manifest_path, NULL), 0);
	hit = strstr(b.ptr, from);
	assert_non_null(hit);
	dgm_buf_put(&out, b.ptr, (size_t)(hit - b.ptr));
	dgm_buf_puts(&out, to);
	dgm_buf_puts(&out, hit + strlen(from));
	assert_int_equal(dgm_fs_write_atomic(path, out.ptr, out.len, 0600, NULL), 0);
	dgm_buf_free(&b);
	dgm_buf_free(&out);
	return path;
}

static void expect_verify_error(const char *mpath, const char *msg)
{
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(dgm_archive_verify(archive_path, mpath, &err), -1);
	assert_int_equal(err.code, DGM_E_ARCHIVE);
	if (!strstr(err.msg, msg))
		fail_msg("expected '%s' in '%s'", msg, err.msg);
}

static void verify_catches_manifest_edits_and_names_the_entry(void **state)
{
	char *dir = new_case("manifest-edits"), *weights = join(store_dir, "bin/weights.bin");
	char *sha = sha_of(weights), *bad = dgm_xstrdup(sha), *p, *expected;

	bad[10] = bad[10] == '0' ? '1' : '0';
	p = edited_manifest(dir, "sha.json", sha, bad);
	expected = dgm_xasprintf("archive '%s' does not match its manifest: "
				 "'store/bin/weights.bin' sha256 differs", archive_path);
	expect_verify_error(p, expected);
	free(p);
	p = edited_manifest(dir, "mode.json", "\"mode\": \"0755\", \"mtime\": 1600000009",
			    "\"mode\": \"0700\", \"mtime\": 1600000009");
	expect_verify_error(p, "'store/run.sh' mode differs");
	free(p);
	p = edited_manifest(dir, "mtime.json", "1600000003", "1600000004");
	expect_verify_error(p, "'store/a/b/c/deep.txt' mtime differs");
	free(p);
	p = edited_manifest(dir, "renamed.json", "store/a/b/c/deep.txt", "store/a/b/c/deeP.txt");
	expect_verify_error(p, "'store/a/b/c/deep.txt' is not in the manifest");
	free(p);
	p = edited_manifest(dir, "link.json", "1600000004, \"size\": 15", "1600000004, \"size\": 16");
	expect_verify_error(p, "'store/latest' link target differs");
	free(p);
	p = edited_manifest(dir, "type.json", "\"path\": \"store/empty\", \"type\": \"dir\"",
			    "\"path\": \"store/empty\", \"type\": \"symlink\"");
	expect_verify_error(p, "sha256 is needed");
	free(p);
	p = edited_manifest(dir, "whole.json", "\"archive_bytes\"", "\"archive_bytes\": 1, \"x\"");
	expect_verify_error(p, "unknown key 'x'");
	free(p);
	p = edited_manifest(dir, "count.json", "\"entry_count\": ", "\"entry_count\": 1");
	expect_verify_error(p, "totals do not match");
	free(p);
	free(expected);
	free(sha);
	free(bad);
	free(weights);
	free(dir);
}

/* --- the manifest format ----------------------------------------------- */

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"
#define MINIMAL "{\"format\": \"dgmigrate-archive-manifest\", \"version\": 1, \"created\": 1, " \
	"\"archive_sha256\": \"" ZEROS "\", \"archive_bytes\": 0, \"entry_count\": 1, " \
	"\"content_bytes\": 0, \"store\": \"/s\", \"extras\": [], \"entries\": [{\"path\": " \
	"\"store\", \"type\": \"dir\", \"mode\": \"0755\", \"mtime\": 1, \"size\": 0}]}\n"

static int read_text(dgm_archive_manifest *m, const char *dir, const char *text, dgm_error *err)
{
	char *path = join(dir, "m.json");
	int rc;

	assert_int_equal(dgm_fs_write_atomic(path, text, strlen(text), 0600, NULL), 0);
	rc = dgm_archive_manifest_read(m, path, err);
	free(path);
	return rc;
}

static void expect_invalid(const char *dir, const char *from, const char *to, const char *msg)
{
	dgm_buf text = DGM_BUF_INIT;
	const char *hit = strstr(MINIMAL, from);
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;

	assert_non_null(hit);
	dgm_buf_put(&text, MINIMAL, (size_t)(hit - MINIMAL));
	dgm_buf_puts(&text, to);
	dgm_buf_puts(&text, hit + strlen(from));
	assert_int_equal(read_text(&m, dir, text.ptr, &err), -1);
	assert_int_equal(err.code, DGM_E_ARCHIVE);
	if (!strstr(err.msg, msg))
		fail_msg("expected '%s' in '%s'", msg, err.msg);
	dgm_buf_free(&text);
}

static void manifest_reader_is_strict(void **state)
{
	char *dir = new_case("manifest-format");
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(read_text(&m, dir, MINIMAL, &err), 0);
	assert_int_equal(m.n_entries, 1);
	assert_string_equal(m.store, "/s");
	dgm_archive_manifest_free(&m);
	expect_invalid(dir, "\"created\"", "\"surprise\": 1, \"created\"", "unknown key 'surprise'");
	expect_invalid(dir, "\"created\": 1", "\"created\": 1, \"created\": 2", "appears twice");
	expect_invalid(dir, "\"created\": 1", "\"created\": 1.5", "expected an integer");
	expect_invalid(dir, "\"created\": 1", "\"created\": 01", "expected an integer");
	expect_invalid(dir, "]}\n", "]}\n{}", "text after the manifest");
	expect_invalid(dir, "\"/s\"", "\"/s\xff\"", "not UTF-8");
	expect_invalid(dir, "\"/s\"", "\"/s\n\"", "control character");
	expect_invalid(dir, ZEROS, "0000", "64 lowercase hex");
	expect_invalid(dir, "\"0755\"", "\"755\"", "four octal digits");
	expect_invalid(dir, "\"dir\"", "\"fifo\"", "type is not");
	expect_invalid(dir, "\"version\": 1", "\"version\": 3", "version 3");
	expect_invalid(dir, "\"entry_count\": 1", "\"entry_count\": 2", "totals");
	expect_invalid(dir, ", \"size\": 0}", "}", "entry without");
	expect_invalid(dir, "\"extras\": [], ", "", "required key is missing");
	expect_invalid(dir, "dgmigrate-archive-manifest", "other", "not a dgmigrate archive");
	expect_invalid(dir, "\"store\", \"type\"", "\"store\\u0000\", \"type\"", "\\u0000");
	expect_invalid(dir, "}]}", "}, {\"path\": \"store\", \"type\": \"dir\", \"mode\": \"0755\", "
		       "\"mtime\": 1, \"size\": 0}]}", "totals");
	expect_invalid(dir, "\"entry_count\": 1", "\"entry_count\": 2", "totals");
	expect_invalid(dir, "\"entry_count\": 1, ", "\"entry_count\": 2, ", "totals");
	expect_invalid(dir, "\"entries\": [{\"path\": \"store\"", "\"entries\": [{\"path_hex\": \"7g\"",
		       "hex digits");
	free(dir);
}

static void manifest_round_trips_any_name(void **state)
{
	char *dir = new_case("manifest-names"), *path = join(dir, "names.json");
	static const char *const names[] = { "store", "store/\"quoted\"\\", "store/tab\there",
					     "store/\xff\xfe", "store/caf\xc3\xa9\x01",
					     "store/\xf0\x9f\x98\x80 emoji" };
	dgm_archive_manifest m = { 0 }, back;
	dgm_error err = DGM_ERROR_INIT;

	m.store = dgm_xstrdup("/srv/m\xe9");
	m.extras = dgm_xcalloc(2, sizeof(*m.extras));
	m.extras[0] = dgm_xstrdup("/etc/app/x.yaml");
	m.n_extras = 1;
	memset(m.archive_sha256, 'a', 64);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		dgm_archive_entry e = { (char *)names[i], i ? DGM_ARCHIVE_SYMLINK : DGM_ARCHIVE_DIR,
					i ? 3 : 0, 0777, -5, "" };

		if (i)
			memset(e.sha256, 'b', 64);
		dgm_archive_manifest_add(&m, &e);
	}
	assert_int_equal(dgm_archive_manifest_index(&m, &err), 0);
	assert_int_equal(dgm_archive_manifest_write(&m, path, &err), 0);
	assert_int_equal(mode_of(path), 0600);
	read_manifest(&back, path);
	assert_string_equal(back.store, m.store);
	assert_string_equal(back.extras[0], "/etc/app/x.yaml");
	assert_int_equal(back.n_entries, m.n_entries);
	for (size_t i = 0; i < m.n_entries; i++) {
		assert_string_equal(back.entries[i].path, m.entries[i].path);
		assert_int_equal(back.entries[i].mtime, -5);
		assert_non_null(dgm_archive_manifest_find(&back, names[i]));
	}
	dgm_archive_manifest_free(&back);
	/* a duplicate path is refused */
	dgm_archive_manifest_add(&m, &m.entries[1]);
	assert_int_equal(dgm_archive_manifest_index(&m, &err), -1);
	dgm_archive_manifest_free(&m);
	free(path);
	free(dir);
}

/* --- restore ------------------------------------------------------------- */

static void expect_no_leftovers(const char *target)
{
	char *pattern = dgm_xasprintf("%s.restore-*", target);

	assert_int_equal(count_glob(pattern), 0);
	free(pattern);
	pattern = dgm_xasprintf("%s.old-*", target);
	assert_int_equal(count_glob(pattern), 0);
	free(pattern);
}

static void restore_or_fail(dgm_archive_restore_state *r, const char *target)
{
	dgm_archive_restore_opts o = { .archive = archive_path, .target = target,
				       .progress = on_progress, .payload = &progress_calls };
	dgm_error err = DGM_ERROR_INIT;

	if (dgm_archive_restore(r, &o, &err))
		fail_msg("%s", err.msg);
}

static void restore_round_trip_into_a_new_target(void **state)
{
	char *dir = new_case("round-trip"), *target = join(dir, "restored");
	dgm_archive_restore_state r;
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;

	char *cwd = getcwd(NULL, 0), *cwd_after;

	read_manifest(&m, manifest_path);
	progress_calls = 0;
	restore_or_fail(&r, target);
	/* threads beside a restore keep their working folder */
	cwd_after = getcwd(NULL, 0);
	assert_string_equal(cwd, cwd_after);
	free(cwd);
	free(cwd_after);
	assert_true(progress_calls >= 1);
	assert_int_equal(progress_done, m.content_bytes);
	assert_int_equal(progress_total, m.content_bytes);
	assert_false(r.identical);
	assert_true(r.store.swapped);
	assert_false(r.store.existed);
	assert_int_equal(r.files_copied, 0);
	assert_int_equal(r.files_extracted, count_files(&m));
	assert_int_equal(r.bytes_extracted, m.content_bytes);
	assert_true(same_tree(store_dir, target));
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	dgm_archive_restore_free(&r);
	expect_no_leftovers(target);
	assert_true(same_tree(store_dir, target));
	dgm_archive_manifest_free(&m);
	free(target);
	free(dir);
}

static void restore_over_an_identical_store_changes_nothing(void **state)
{
	char *dir = new_case("identical"), *target = join(dir, "models");
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;
	struct stat before, after;

	copy_tree(store_dir, target);
	assert_int_equal(lstat(target, &before), 0);
	restore_or_fail(&r, target);
	assert_true(r.identical);
	assert_null(r.store.dir);
	assert_false(r.store.swapped);
	assert_int_equal(r.files_extracted + r.files_copied, 0);
	expect_no_leftovers(target);
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	dgm_archive_restore_free(&r);
	assert_int_equal(lstat(target, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_true(same_tree(store_dir, target));
	free(target);
	free(dir);
}

/* Three files differ (content, gone, mode), one is new: the rest is
 * copied from the current store, those three come from the archive. */
static void damage(const char *target)
{
	char *gone = join(target, "json/g2/m002.json"), *run = join(target, "run.sh");

	put_str(target, "json/g1/m001.json", "{\"changed\": 1}\n", 0644, T0 + 999);
	assert_int_equal(unlink(gone), 0);
	assert_int_equal(chmod(run, 0700), 0);
	put_str(target, "json/new.json", "{}\n", 0644, T0);
	free(gone);
	free(run);
}

static void restore_copies_unchanged_files_and_extracts_the_rest(void **state)
{
	char *dir = new_case("partial"), *target = join(dir, "models"), *witness = join(dir, "w");
	dgm_archive_restore_state r;
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;
	char *aside;

	read_manifest(&m, manifest_path);
	copy_tree(store_dir, target);
	damage(target);
	copy_tree(target, witness);
	restore_or_fail(&r, target);
	assert_false(r.identical);
	assert_int_equal(r.files_extracted, 3);
	assert_int_equal(r.files_copied, count_files(&m) - 3);
	assert_true(same_tree(store_dir, target));
	/* the previous store is intact, aside, until commit */
	assert_true(r.store.existed);
	assert_true(same_tree(witness, r.store.aside));
	aside = dgm_xstrdup(r.store.aside);
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	assert_false(exists(aside));
	expect_no_leftovers(target);
	dgm_archive_restore_free(&r);
	dgm_archive_manifest_free(&m);
	free(aside);
	free(target);
	free(witness);
	free(dir);
}

static void restore_abort_puts_the_old_store_back(void **state)
{
	char *dir = new_case("abort"), *target = join(dir, "models"), *witness = join(dir, "w");
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;

	copy_tree(store_dir, target);
	damage(target);
	copy_tree(target, witness);
	restore_or_fail(&r, target);
	assert_true(same_tree(store_dir, target));
	assert_int_equal(dgm_archive_restore_abort(&r, &err), 0);
	dgm_archive_restore_free(&r);
	assert_true(same_tree(witness, target));
	expect_no_leftovers(target);
	free(target);
	free(witness);
	free(dir);
}

static void restore_stage_changes_nothing_until_swap(void **state)
{
	char *dir = new_case("stage"), *target = join(dir, "models"), *witness = join(dir, "w");
	dgm_archive_restore_opts o = { .archive = archive_path, .target = target };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;

	copy_tree(store_dir, target);
	damage(target);
	copy_tree(target, witness);
	assert_int_equal(dgm_archive_restore_stage(&r, &o, &err), 0);
	assert_true(same_tree(witness, target));
	assert_true(same_tree(store_dir, r.store.staged));
	assert_int_equal(mode_of(r.store.dir), 0700);
	assert_false(exists(r.store.aside));
	assert_int_equal(dgm_archive_restore_swap(&r, &err), 0);
	assert_true(same_tree(store_dir, target));
	assert_true(same_tree(witness, r.store.aside));
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	dgm_archive_restore_free(&r);
	expect_no_leftovers(target);
	free(target);
	free(witness);
	free(dir);
}

static void restore_refuses_a_damaged_archive_and_leaves_no_trace(void **state)
{
	char *dir = new_case("damaged"), *copy = copy_archive(dir), *target = join(dir, "models");
	char *witness = join(dir, "w");
	dgm_archive_restore_opts o = { .archive = copy, .target = target };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;
	struct stat st;

	copy_tree(store_dir, target);
	damage(target);
	copy_tree(target, witness);
	assert_int_equal(stat(copy, &st), 0);
	flip_byte(copy, st.st_size / 2);
	assert_int_equal(dgm_archive_restore(&r, &o, &err), -1);
	assert_int_equal(err.code, DGM_E_ARCHIVE);
	assert_non_null(strstr(err.msg, "cannot restore"));
	assert_true(same_tree(witness, target));
	expect_no_leftovers(target);
	free(copy);
	free(target);
	free(witness);
	free(dir);
}

/* --- hostile archives ---------------------------------------------------- */

typedef struct hostile_entry {
	const char *path;
	char type;             /* 'd', 'f', 'l' */
	const char *target;    /* of a symlink */
	bool listed;           /* in the "unlisted" manifest too */
} hostile_entry;

/* Write the entries with libarchive, and a manifest describing them:
 * all of them (listed = false) or only those marked listed. */
static void write_hostile(const char *path, const hostile_entry *he, size_t n, bool all)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	char *mpath = dgm_archive_manifest_path(path);
	dgm_archive_manifest m = { 0 };
	dgm_error err = DGM_ERROR_INIT;
	long long size;

	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_zstd(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		const char *body = he[i].type == 'f' ? "pwned\n" : he[i].target;
		dgm_archive_entry me = { (char *)he[i].path, DGM_ARCHIVE_FILE, 0, 0644, T0, "" };

		archive_entry_clear(e);
		archive_entry_set_pathname(e, he[i].path);
		archive_entry_set_mtime(e, T0, 0);
		archive_entry_set_perm(e, he[i].type == 'd' ? 0755 : 0644);
		if (he[i].type == 'd') {
			archive_entry_set_filetype(e, AE_IFDIR);
			me.type = DGM_ARCHIVE_DIR;
			me.mode = 0755;
		} else if (he[i].type == 'l') {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, he[i].target);
			me.type = DGM_ARCHIVE_SYMLINK;
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)strlen(body));
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (he[i].type == 'f')
			assert_int_equal(archive_write_data(a, body, strlen(body)), strlen(body));
		if (he[i].type != 'd') {
			me.size = (long long)strlen(body);
			{
				char *tmp = dgm_xasprintf("%s.body", path);

				dgm_fs_write_atomic(tmp, body, strlen(body), 0600, NULL);
				dgm_fs_sha256_file(me.sha256, NULL, tmp, NULL);
				unlink(tmp);
				free(tmp);
			}
		}
		if (all || he[i].listed) {
			dgm_archive_manifest_add(&m, &me);
			m.content_bytes += me.type == DGM_ARCHIVE_FILE ? me.size : 0;
		}
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(e);
	assert_int_equal(dgm_fs_sha256_file(m.archive_sha256, &size, path, NULL), 0);
	m.archive_bytes = size;
	m.store = dgm_xstrdup("/hostile");
	m.created = T0;
	assert_int_equal(dgm_archive_manifest_index(&m, &err), 0);
	assert_int_equal(dgm_archive_manifest_write(&m, mpath, &err), 0);
	dgm_archive_manifest_free(&m);
	free(mpath);
}

/* Restore must fail, write nothing anywhere (would-be paths checked),
 * leave no staging folder and not touch the current store. */
static void expect_refused(const char *dir, const char *name, const hostile_entry *he, size_t n,
			   const char *const *would_be, const char *msg)
{
	for (int all = 0; all < 2; all++) {
		char *archive = dgm_xasprintf("%s/%s-%d.tar.zst", dir, name, all);
		char *target = dgm_xasprintf("%s/%s-%d-models", dir, name, all);
		char *witness = dgm_xasprintf("%s/%s-%d-w", dir, name, all);
		dgm_archive_restore_opts o = { .archive = archive, .target = target };
		dgm_archive_restore_state r;
		dgm_error err = DGM_ERROR_INIT;

		write_hostile(archive, he, n, all);
		copy_tree(store_dir, target);
		copy_tree(target, witness);
		assert_int_equal(dgm_archive_restore(&r, &o, &err), -1);
		assert_int_equal(err.code, DGM_E_ARCHIVE);
		print_message("%s (%s manifest): %s\n", name, all ? "full" : "partial", err.msg);
		if (!strstr(err.msg, msg))
			fail_msg("expected '%s' in '%s'", msg, err.msg);
		for (size_t i = 0; would_be[i]; i++)
			if (exists(would_be[i]))
				fail_msg("'%s' was written", would_be[i]);
		assert_true(same_tree(witness, target));
		expect_no_leftovers(target);
		free(archive);
		free(target);
		free(witness);
	}
}

static void restore_refuses_dotdot_entries(void **state)
{
	char *dir = new_case("dotdot");
	char *up = dgm_xasprintf("%s/x", sandbox), *up2 = dgm_xasprintf("%s/x", dir);
	char *cwd_up = realpath("..", NULL), *cwd_x = dgm_xasprintf("%s/x", cwd_up);
	const char *would_be[] = { up, up2, cwd_x, NULL };
	const hostile_entry plain[] = { { "store", 'd', NULL, true }, { "store/ok", 'f', NULL, true },
					{ "../x", 'f', NULL, false } };
	const hostile_entry nested[] = { { "store", 'd', NULL, true },
					 { "store/../../x", 'f', NULL, false } };

	expect_refused(dir, "plain", plain, 3, would_be, "refusing entry '../x': a '..' component");
	expect_refused(dir, "nested", nested, 2, would_be, "a '..' component");
	free(up);
	free(up2);
	free(cwd_up);
	free(cwd_x);
	free(dir);
}

static void restore_refuses_absolute_entries(void **state)
{
	char *dir = new_case("absolute"), *abs_dir = join(dir, "abs");
	char *abs_x = join(abs_dir, "x"), *store_abs = dgm_xasprintf("store%s", abs_x);
	const char *would_be[] = { abs_x, NULL };
	const hostile_entry plain[] = { { "store", 'd', NULL, true }, { abs_x, 'f', NULL, false } };

	/* the folder exists: only the refusal keeps x out of it */
	assert_int_equal(mkdir(abs_dir, 0700), 0);
	expect_refused(dir, "abs", plain, 2, would_be, "an absolute path");
	free(dir);
	free(abs_dir);
	free(abs_x);
	free(store_abs);
}

static void restore_refuses_paths_through_symlinks(void **state)
{
	char *dir = new_case("symlink");
	char *name = dgm_xasprintf("dgm-archive-test-%d", (int)getpid());
	char *root_x = dgm_xasprintf("/%s", name), *in_store = dgm_xasprintf("store/link/%s", name);
	char *top = dgm_xasprintf("link/%s", name), *into = join(dir, "into");
	char *into_x = join(into, name);
	const char *would_be[] = { root_x, into_x, NULL };
	const hostile_entry to_root[] = { { "store", 'd', NULL, true }, { "store/link", 'l', "/", true },
					  { in_store, 'f', NULL, false } };
	const hostile_entry to_dir[] = { { "store", 'd', NULL, true }, { "store/link", 'l', into, true },
					 { in_store, 'f', NULL, false } };
	const hostile_entry outside[] = { { "store", 'd', NULL, true }, { "link", 'l', "/", false },
					  { top, 'f', NULL, false } };

	assert_int_equal(mkdir(into, 0700), 0);
	expect_refused(dir, "to-root", to_root, 3, would_be, "goes through symlink 'store/link'");
	expect_refused(dir, "to-dir", to_dir, 3, would_be, "goes through symlink 'store/link'");
	expect_refused(dir, "outside", outside, 3, would_be, "outside store/ and extra/");
	free(name);
	free(root_x);
	free(in_store);
	free(top);
	free(into);
	free(into_x);
	free(dir);
}

/* store/ plus one special entry: a hard link to /etc/passwd, or a fifo. */
static void write_special(const char *archive, bool hardlink)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	char *mpath = dgm_archive_manifest_path(archive);
	dgm_archive_manifest m = { 0 };
	dgm_archive_entry root = { "store", DGM_ARCHIVE_DIR, 0, 0755, T0, "" };
	dgm_archive_entry pw = { "store/pw", DGM_ARCHIVE_FILE, 0, 0644, T0, "" };

	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, archive), ARCHIVE_OK);
	archive_entry_set_pathname(e, "store");
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	archive_entry_set_mtime(e, T0, 0);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "store/pw");
	archive_entry_set_filetype(e, hardlink ? AE_IFREG : AE_IFIFO);
	if (hardlink)
		archive_entry_set_hardlink(e, "/etc/passwd");
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, T0, 0);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
	memset(pw.sha256, '0', 64);
	dgm_archive_manifest_add(&m, &root);
	dgm_archive_manifest_add(&m, &pw);
	memset(m.archive_sha256, '0', 64);
	m.store = dgm_xstrdup("/h");
	assert_int_equal(dgm_archive_manifest_index(&m, NULL), 0);
	assert_int_equal(dgm_archive_manifest_write(&m, mpath, NULL), 0);
	dgm_archive_manifest_free(&m);
	free(mpath);
}

static void restore_refuses_hard_links_and_devices(void **state)
{
	char *dir = new_case("special"), *archive = join(dir, "h.tar.zst");
	char *target = join(dir, "models");
	dgm_archive_restore_opts o = { .archive = archive, .target = target };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;

	write_special(archive, true);
	assert_int_equal(dgm_archive_restore(&r, &o, &err), -1);
	assert_non_null(strstr(err.msg, "'store/pw' is a hard link"));
	assert_false(exists(target));
	expect_no_leftovers(target);
	unlink(archive);
	write_special(archive, false);
	assert_int_equal(dgm_archive_restore(&r, &o, &err), -1);
	assert_non_null(strstr(err.msg, "'store/pw' is not a file, folder or symlink"));
	assert_false(exists(target));
	expect_no_leftovers(target);
	free(dir);
	free(archive);
	free(target);
}

static bool run_quiet(const char *const *argv)
{
	dgm_child c = { .argv = argv, .timeout_ms = 60000 };
	dgm_error err = DGM_ERROR_INIT;

	return dgm_run(&c, &err) == 0;
}

/* A store that is a mount point cannot be swapped by a rename: refused
 * before anything is staged. Needs the right to mount; skipped without. */
static void restore_refuses_a_mount_point_target(void **state)
{
	char *dir = new_case("mount"), *target = join(dir, "models");
	const char *mount[] = { "mount", "-t", "tmpfs", "-o", "size=1m", "none", target, NULL };
	const char *umount[] = { "umount", target, NULL };
	dgm_archive_restore_opts o = { .archive = archive_path, .target = target };
	dgm_archive_restore_state r;
	dgm_error err = DGM_ERROR_INIT;
	char *pattern = dgm_xasprintf("%s.*", target);
	int rc;

	assert_int_equal(mkdir(target, 0755), 0);
	if (geteuid() != 0 || !run_quiet(mount)) {
		free(pattern);
		free(target);
		free(dir);
		skip();
	}
	put_str(target, "old.json", "{}", 0644, T0);
	rc = dgm_archive_restore(&r, &o, &err);
	assert_true(run_quiet(umount));
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err.msg, "is a mount point"));
	assert_int_equal(count_glob(pattern), 0);
	free(pattern);
	free(target);
	free(dir);
}

/* --- extra paths --------------------------------------------------------- */

static void extras_are_archived_apart_and_restored_on_request(void **state)
{
	char *dir = new_case("extras"), *store = join(dir, "store"), *dest = join(dir, "x.tar.zst");
	char *file = join(dir, "app.yaml"), *conf = join(dir, "conf"), *target = join(dir, "restored");
	char *wfile = join(dir, "w-app.yaml"), *wconf = join(dir, "w-conf");
	const char *extras[] = { file, conf };
	dgm_archive_opts o = { .dest = dest, .store = store, .extras = extras, .n_extras = 2 };
	dgm_archive_restore_opts ro = { .archive = dest, .target = target, .restore_extras = extras,
					.n_restore_extras = 1 };
	const char *bogus[] = { "/not/an/extra" };
	dgm_archive_restore_state r;
	dgm_archive_manifest m;
	dgm_error err = DGM_ERROR_INIT;

	assert_int_equal(mkdir(store, 0755), 0);
	put_str(store, "m.json", "{}", 0644, T0);
	put_str(dir, "app.yaml", "feature: on\n", 0640, T0 + 1);
	assert_int_equal(mkdir(conf, 0755), 0);
	put_str(conf, "a.conf", "a=1\n", 0644, T0 + 2);
	put_dir(conf, "sub");
	put_link(conf, "sub/l", "../a.conf", T0 + 3);
	if (dgm_archive_create(&m, &o, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(m.n_extras, 2);
	assert_string_equal(m.extras[0], file);
	assert_non_null(dgm_archive_manifest_find(&m, "extra/0/app.yaml"));
	assert_non_null(dgm_archive_manifest_find(&m, "extra/1/conf/sub/l"));
	assert_int_equal(dgm_archive_verify(dest, NULL, &err), 0);
	copy_tree(file, wfile);
	copy_tree(conf, wconf);
	put_str(dir, "app.yaml", "feature: off\n", 0600, T0 + 9);
	put_str(conf, "a.conf", "a=2\n", 0644, T0 + 9);

	ro.restore_extras = bogus;
	assert_int_equal(dgm_archive_restore(&r, &ro, &err), -1);
	assert_non_null(strstr(err.msg, "'/not/an/extra' is not an extra path"));
	expect_no_leftovers(target);

	ro.restore_extras = extras;
	if (dgm_archive_restore(&r, &ro, &err))
		fail_msg("%s", err.msg);
	assert_true(same_tree(wfile, file));
	assert_int_equal(r.n_extras, 1);
	assert_true(r.extras[0].swapped);
	assert_int_equal(dgm_archive_restore_commit(&r, &err), 0);
	/* not asked for: conf stays as it is, and nothing of it is left
	 * staged (it is not extracted at all) */
	{
		char *now = join(conf, "a.conf"), *before = join(wconf, "a.conf");

		assert_false(same_content(now, before));
		free(now);
		free(before);
	}
	expect_no_leftovers(target);
	assert_int_equal(count_glob(file), 1);
	{
		char *pattern = dgm_xasprintf("%s.*", file);

		assert_int_equal(count_glob(pattern), 0);
		free(pattern);
	}
	dgm_archive_restore_free(&r);
	dgm_archive_manifest_free(&m);
	free(dir);
	free(store);
	free(dest);
	free(file);
	free(conf);
	free(target);
	free(wfile);
	free(wconf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(archive_memory_stays_flat_on_a_64_mib_file),
		cmocka_unit_test(create_writes_owner_only_archive_and_full_manifest),
		cmocka_unit_test(create_is_deterministic),
		cmocka_unit_test(create_refuses_what_it_cannot_archive_faithfully),
		cmocka_unit_test(verify_accepts_the_archive),
		cmocka_unit_test(verify_catches_a_flipped_byte_anywhere),
		cmocka_unit_test(verify_catches_a_truncated_archive),
		cmocka_unit_test(verify_catches_manifest_edits_and_names_the_entry),
		cmocka_unit_test(manifest_reader_is_strict),
		cmocka_unit_test(manifest_round_trips_any_name),
		cmocka_unit_test(restore_round_trip_into_a_new_target),
		cmocka_unit_test(restore_over_an_identical_store_changes_nothing),
		cmocka_unit_test(restore_copies_unchanged_files_and_extracts_the_rest),
		cmocka_unit_test(restore_abort_puts_the_old_store_back),
		cmocka_unit_test(restore_stage_changes_nothing_until_swap),
		cmocka_unit_test(restore_refuses_a_damaged_archive_and_leaves_no_trace),
		cmocka_unit_test(restore_refuses_dotdot_entries),
		cmocka_unit_test(restore_refuses_absolute_entries),
		cmocka_unit_test(restore_refuses_paths_through_symlinks),
		cmocka_unit_test(restore_refuses_hard_links_and_devices),
		cmocka_unit_test(restore_refuses_a_mount_point_target),
		cmocka_unit_test(extras_are_archived_apart_and_restored_on_request),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
