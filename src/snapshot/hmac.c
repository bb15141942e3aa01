/* hmac.c - authenticated snapshots: an HMAC-SHA-256, keyed by a secret
 * kept outside the snapshot folder, over every file of a snapshot that
 * decides what a restore does.
 *
 * The MACs live in the JSON files they sign ("hmac" in manifest.json and
 * in writes.json), not in a separate file: both files are rewritten
 * (a dropped server-side copy, a new data-loss baseline) and one atomic
 * rename then replaces content and MAC together, so no crash leaves an
 * honest snapshot whose MAC no longer matches. manifest.json's "hmac"
 * holds one MAC per part, so a mismatch names the file:
 *   "manifest.json"                 its canonical content without "hmac"
 *                                   (archive_sha256 and files_sha256 in it)
 *   "db.sha256"                     the bytes of the dump's checksum list
 *   "models.tar.zst.manifest.json"  the bytes of the archive's manifest
 * Each MAC is over "dgmigrate-snapshot-hmac-v1\0<id>\0<part>\0<content>",
 * so no part can be moved to another snapshot or another part. The dump
 * files are checked against db.sha256 and the archive against its
 * manifest before either is read (verify_dump, dgm_archive_*). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dgm/buf.h"
#include "dgm/fs.h"
#include "dgm/log.h"
#include "internal.h"

#define KEY_MIN 32
#define KEY_MAX 1024
#define DOMAIN "dgmigrate-snapshot-hmac-v1"

static bool trust_unsigned;

void dgm_snapshot_trust_unsigned(bool on)
{
	trust_unsigned = on;
}

char *dgm_snapshot_key_path(const dgm_plan *plan)
{
	if (plan->snapshot.key_file)
		return dgm_xstrdup(plan->snapshot.key_file);
	return dgm_xasprintf("%s/snapshot.key", plan->state_dir);
}

int dgm_snapshot_mac(char hex[65], const unsigned char *key, size_t keylen,
		     const void *const *chunks, const size_t *lens, size_t n)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end()
	};
	unsigned char out[32];
	size_t outlen = 0;
	int ok = ctx && EVP_MAC_init(ctx, key, keylen, params) == 1;

	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_MAC_update(ctx, chunks[i], lens[i]) == 1;
	ok = ok && EVP_MAC_final(ctx, out, &outlen, sizeof(out)) == 1 && outlen == 32;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	if (!ok)
		return -1;
	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
	OPENSSL_cleanse(out, sizeof(out));
	return 0;
}

int dgm_snapshot_part_mac(char hex[65], const dgm_snapshot_key *k, const char *id,
			  const char *part, const void *data, size_t len)
{
	const void *chunks[] = { DOMAIN, id, part, data };
	const size_t lens[] = { sizeof(DOMAIN), strlen(id) + 1, strlen(part) + 1, len };

	return dgm_snapshot_mac(hex, k->bytes, k->len, chunks, lens, 4);
}

/* Names the key without telling anything about it: a mismatch can then
 * say "signed with another key" rather than "changed". */
static void key_id(char out[17], const dgm_snapshot_key *k)
{
	char hex[65] = "";
	const void *chunks[] = { DOMAIN " key id" };
	const size_t lens[] = { strlen(DOMAIN " key id") };

	dgm_snapshot_mac(hex, k->bytes, k->len, chunks, lens, 1);
	snprintf(out, 17, "%s", hex);
}

/* 32 random bytes, written to a temporary file and linked into place:
 * two runs creating it at once both end up with the one that won. */
static int key_create(const char *path, dgm_error *err)
{
	unsigned char key[32];
	char *tmp = dgm_xasprintf("%s.new-%ld", path, (long)getpid());
	int fd = -1, ret = -1;

	if (RAND_bytes(key, sizeof(key)) != 1) {
		dgm_error_set(err, DGM_E_IO, "cannot draw random bytes for the snapshot key '%s'",
			      path);
		goto out;
	}
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) != 0) {
		dgm_error_errno(err, DGM_E_IO, "cannot write the snapshot key '%s'", tmp);
		goto out;
	}
	if (link(tmp, path) != 0 && errno != EEXIST) {
		dgm_error_errno(err, DGM_E_IO, "cannot create the snapshot key '%s'", path);
		goto out;
	}
	dgm_info("created the snapshot key '%s' (32 random bytes, 0600): snapshots are signed "
		 "with it; keep it, or restores of them need --trust-unsigned", path);
	ret = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return ret;
}

static int key_read(dgm_snapshot_key *k, dgm_error *err)
{
	int fd = open(k->path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return dgm_error_errno(err, DGM_E_IO, "cannot read the snapshot key '%s'", k->path);
	n = read(fd, k->bytes, sizeof(k->bytes));
	close(fd);
	if (n < KEY_MIN || n >= KEY_MAX) {
		dgm_error_set(err, DGM_E_PLAN, "the snapshot key '%s' holds %zd bytes: it needs "
			      "%d to %d", k->path, n, KEY_MIN, KEY_MAX - 1);
		dgm_error_hint(err, "make one with: head -c 32 /dev/urandom > '%s'", k->path);
		return -1;
	}
	k->len = (size_t)n;
	return 0;
}

int dgm_snapshot_key_load(dgm_snapshot_key *k, const dgm_plan *plan, bool create,
			  dgm_error *err)
{
	char *path = dgm_snapshot_key_path(plan);
	char *dir = dgm_xstrdup(path), *slash = strrchr(dir, '/');
	int ret = -1;

	memset(k, 0, sizeof(*k));
	snprintf(k->path, sizeof(k->path), "%s", path);
	if (slash)
		*slash = '\0';
	if (create && access(path, F_OK) != 0 && errno == ENOENT &&
	    (dgm_fs_mkdir_p(*dir ? dir : "/", 0700, err) || key_create(path, err)))
		goto out;
	if (!create && access(path, F_OK) != 0 && errno == ENOENT) {
		dgm_error_errno(err, DGM_E_RUN, "the snapshot key '%s' is missing: no snapshot "
				"can be authenticated", path);
		dgm_error_hint(err, "put back the key the snapshots were signed with (snapshot."
			       "key_file, or snapshot.key in state_dir), or pass --trust-unsigned "
			       "for a snapshot you know nobody else could write");
		goto out;
	}
	ret = key_read(k, err);
	if (ret == 0)
		key_id(k->id, k);
out:
	free(dir);
	free(path);
	return ret;
}

void dgm_snapshot_key_clear(dgm_snapshot_key *k)
{
	OPENSSL_cleanse(k->bytes, sizeof(k->bytes));
	k->len = 0;
}

/* The form the MAC covers: sorted keys, no white space, no "hmac". */
static char *canonical(json_t *o)
{
	json_t *c = json_copy(o);
	char *text;

	json_object_del(c, "hmac");
	text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	return text ? text : dgm_xstrdup("");
}

static int file_mac(char hex[65], const dgm_snapshot_key *k, const char *id, const char *dir,
		    const char *part, dgm_error *err)
{
	dgm_buf b = DGM_BUF_INIT;
	char *path = dgm_xasprintf("%s/%s", dir, part);
	int ret = dgm_buf_read_file(&b, path, err);

	if (ret == 0 && dgm_snapshot_part_mac(hex, k, id, part, b.ptr ? b.ptr : "", b.len))
		ret = dgm_error_set(err, DGM_E_RUN, "cannot compute an HMAC (OpenSSL)");
	free(path);
	dgm_buf_free(&b);
	return ret;
}

static int json_mac(char hex[65], const dgm_snapshot_key *k, const char *id, const char *part,
		    json_t *o, dgm_error *err)
{
	char *text = canonical(o);
	int ret = dgm_snapshot_part_mac(hex, k, id, part, text, strlen(text));

	free(text);
	return ret ? dgm_error_set(err, DGM_E_RUN, "cannot compute an HMAC (OpenSSL)") : 0;
}

/* The parts of a snapshot besides manifest.json. */
static size_t parts(const char **out, const dgm_snapshot *s)
{
	size_t n = 0;

	if (s->has_dump)
		out[n++] = "db.sha256";
	if (s->has_store)
		out[n++] = "models.tar.zst.manifest.json";
	return n;
}

int dgm_snapshot_sign(json_t *manifest, const dgm_snapshot *s, const dgm_plan *plan,
		      const char *dir, dgm_error *err)
{
	dgm_snapshot_key k;
	json_t *h = json_object();
	const char *names[2];
	char hex[65];
	size_t n = parts(names, s);
	int ret = -1;

	if (dgm_snapshot_key_load(&k, plan, true, err))
		goto out;
	json_object_set_new(h, "algorithm", json_string("HMAC-SHA-256"));
	json_object_set_new(h, "key_id", json_string(k.id));
	if (json_mac(hex, &k, s->id, "manifest.json", manifest, err))
		goto out;
	json_object_set_new(h, "manifest.json", json_string(hex));
	for (size_t i = 0; i < n; i++) {
		if (file_mac(hex, &k, s->id, dir, names[i], err))
			goto out;
		json_object_set_new(h, names[i], json_string(hex));
	}
	json_object_set(manifest, "hmac", h);
	ret = 0;
out:
	dgm_snapshot_key_clear(&k);
	json_decref(h);
	if (ret)
		dgm_error_prefix(err, "cannot sign snapshot '%s'", s->id);
	return ret;
}

int dgm_snapshot_seal_json(json_t *o, const dgm_plan *plan, const char *id, const char *part,
			   dgm_error *err)
{
	dgm_snapshot_key k;
	char hex[65];
	int ret = -1;

	if (dgm_snapshot_key_load(&k, plan, true, err) || json_mac(hex, &k, id, part, o, err))
		goto out;
	json_object_set_new(o, "hmac", json_pack("{s:s, s:s, s:s}", "algorithm", "HMAC-SHA-256",
						  "key_id", k.id, part, hex));
	ret = 0;
out:
	dgm_snapshot_key_clear(&k);
	return ret;
}

/* --- checking --- */

bool dgm_snapshot_seal_holds(json_t *o, const dgm_plan *plan, const char *id, const char *part)
{
	const char *want = json_string_value(json_object_get(json_object_get(o, "hmac"), part));
	dgm_snapshot_key k;
	dgm_error e = DGM_ERROR_INIT;
	char hex[65];
	bool ok = false;

	if (!want || strlen(want) != 64 || dgm_snapshot_key_load(&k, plan, false, &e))
		goto out;
	ok = json_mac(hex, &k, id, part, o, &e) == 0 && CRYPTO_memcmp(hex, want, 64) == 0;
	dgm_snapshot_key_clear(&k);
out:
	dgm_error_clear(&e);
	return ok;
}

static void say_unsigned(const dgm_snapshot *s, const char *what, const char *keyfile,
			 dgm_error *err)
{
	dgm_error_set(err, DGM_E_RUN, "snapshot '%s' is not signed: %s has no HMAC (made before "
		      "dgmigrate signed snapshots, or the HMAC was removed)", s->id, what);
	dgm_error_hint(err, "restore or verify it only if nobody else could write its folder "
		       "'%s': pass --trust-unsigned; snapshots taken now are signed with the key "
		       "'%s'", s->dir, keyfile);
}

/* writes.json, when the folder holds one: a baseline is rewritten after
 * every restore, so it carries its own MAC (the key id, the MAC). */
static int check_writes(const dgm_snapshot *s, const dgm_snapshot_key *k, dgm_buf *bad,
			dgm_error *err)
{
	char *path = dgm_xasprintf("%s/writes.json", s->dir);
	json_t *o = json_load_file(path, 0, NULL), *h;
	char hex[65];
	const char *want;
	int ret = 0;

	if (!o && access(path, F_OK) != 0)
		goto out;
	h = json_object_get(o, "hmac");
	want = json_string_value(json_object_get(h, "writes.json"));
	if (o && !h && trust_unsigned)
		dgm_warn("--trust-unsigned: the data-loss baseline '%s' is not signed", path);
	else if (o && !h) {
		say_unsigned(s, "writes.json", k->path, err);
		ret = -1;
	} else if (want && strlen(want) == 64 && json_mac(hex, k, s->id, "writes.json", o, err))
		ret = -1;
	else if (!want || strlen(want) != 64 || CRYPTO_memcmp(hex, want, 64))
		dgm_buf_printf(bad, "%swrites.json", bad->len ? ", " : "");
out:
	json_decref(o);
	free(path);
	return ret;
}

/* Every part's MAC; the files that do not match go to bad. */
static int check_parts(const dgm_snapshot *s, const dgm_snapshot_key *k, json_t *h,
		       dgm_buf *bad, dgm_error *err)
{
	const char *names[3] = { "manifest.json" };
	size_t n = 1 + parts(names + 1, s);
	json_t *m = dgm_snapshot_manifest_json(s);
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i++) {
		const char *want = json_string_value(json_object_get(h, names[i]));
		char hex[65] = "";
		dgm_error e = DGM_ERROR_INIT;

		if (i == 0)
			ret = json_mac(hex, k, s->id, names[i], m, err);
		else if (file_mac(hex, k, s->id, s->dir, names[i], &e))
			dgm_debug("%s", e.msg); /* a missing file does not match */
		dgm_error_clear(&e);
		if (ret == 0 && (!want || strlen(want) != 64 || CRYPTO_memcmp(hex, want, 64)))
			dgm_buf_printf(bad, "%s%s", bad->len ? ", " : "", names[i]);
	}
	json_decref(m);
	return ret;
}

/* A snapshot made before snapshots were signed, used on the user's word
 * (--trust-unsigned): still its baseline's MAC, where a key is there. */
static int trusted_unsigned(const dgm_snapshot *s, const dgm_plan *plan, dgm_snapshot_key *k,
			    dgm_error *err)
{
	dgm_error e = DGM_ERROR_INIT;
	char *path = dgm_snapshot_key_path(plan);
	int ret = 0;

	if (!trust_unsigned) {
		say_unsigned(s, "manifest.json", path, err);
		ret = -1;
	} else {
		dgm_warn("--trust-unsigned: snapshot '%s' is not signed; it is used as it is", s->id);
		if (dgm_snapshot_key_load(k, plan, false, &e))
			ret = 1; /* no key: nothing more can be checked */
	}
	dgm_error_clear(&e);
	free(path);
	return ret;
}

static int authenticate(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	json_t *h = s->hmac ? json_loads(s->hmac, 0, NULL) : NULL;
	const char *kid = json_string_value(json_object_get(h, "key_id"));
	dgm_snapshot_key k = { 0 };
	dgm_buf bad = DGM_BUF_INIT;
	int ret = -1, rc;

	if (!h) {
		rc = trusted_unsigned(s, plan, &k, err);
		if (rc) {
			ret = rc > 0 ? 0 : -1;
			goto out;
		}
	} else if (dgm_snapshot_key_load(&k, plan, false, err)) {
		goto out;
	} else if (!kid || strcmp(kid, k.id)) {
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s' was signed with another key (key id "
			      "'%s'; the key '%s' has id '%s')", s->id, kid ? kid : "", k.path, k.id);
		dgm_error_hint(err, "restore it with the key it was signed with (snapshot.key_file), "
			       "or use another snapshot");
		goto out;
	} else if (check_parts(s, &k, h, &bad, err))
		goto out;
	if (check_writes(s, &k, &bad, err))
		goto out;
	if (bad.len) {
		dgm_error_set(err, DGM_E_RUN, "snapshot '%s': %s in '%s' do%s not match %s HMAC "
			      "(key '%s')", s->id, bad.ptr, s->dir, strchr(bad.ptr, ',') ? "" : "es",
			      strchr(bad.ptr, ',') ? "their" : "its", k.path);
		dgm_error_hint(err, "the snapshot folder was written after the snapshot was taken: "
			       "do not restore it; use another snapshot");
		goto out;
	}
	ret = 0;
out:
	dgm_snapshot_key_clear(&k);
	dgm_buf_free(&bad);
	json_decref(h);
	return ret;
}

int dgm_snapshot_authenticate(const dgm_snapshot *s, const dgm_plan *plan, dgm_error *err)
{
	return authenticate(s, plan, err);
}

bool dgm_snapshot_authentic(const dgm_snapshot *s, const dgm_plan *plan)
{
	dgm_error e = DGM_ERROR_INIT;
	bool ok = authenticate(s, plan, &e) == 0;

	if (!ok)
		dgm_warn("%s: not used (%s)", e.msg, e.hint);
	dgm_error_clear(&e);
	return ok;
}

/* --- advice for validate and preflight --- */

/* Is path inside (or equal to) dir? Both absolute, compared resolved
 * where they exist. */
static bool inside(const char *path, const char *dir)
{
	char rp[PATH_MAX], rd[PATH_MAX];
	char *parent = dgm_xstrdup(path), *slash = strrchr(parent, '/');
	size_t n;
	bool in;

	if (slash && slash != parent)
		*slash = '\0';
	if (!realpath(parent, rp))
		snprintf(rp, sizeof(rp), "%s", parent);
	if (!realpath(dir, rd))
		snprintf(rd, sizeof(rd), "%s", dir);
	free(parent);
	n = strlen(rd);
	in = !strncmp(rp, rd, n) && (rp[n] == '\0' || rp[n] == '/' || (n == 1 && rd[0] == '/'));
	return in;
}

void dgm_snapshot_key_advise(const dgm_plan *plan)
{
	char *path = dgm_snapshot_key_path(plan);
	const dgm_plan_mark *m = dgm_plan_where(plan, "snapshot.key_file");
	char where[PATH_MAX + 32] = "";
	struct stat st;

	/* where the plan names the key, the warning says where */
	if (m)
		snprintf(where, sizeof(where), "%s:%d:%d: ", plan->path, m->line, m->column);
	if (inside(path, plan->snapshot.directory))
		dgm_warn("%sthe snapshot key '%s' is inside snapshot.directory '%s': whoever can "
			 "write the snapshots can read or replace the key and forge a snapshot; set "
			 "snapshot.key_file (or state_dir) to a place only this user can read", where,
			 path, plan->snapshot.directory);
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		dgm_warn("%sthe snapshot key '%s' has mode %04o: others can read or change it; "
			 "chmod 600 '%s'", where, path, (unsigned)(st.st_mode & 07777), path);
	free(path);
}
