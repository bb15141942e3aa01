/* chain.c - archives that hold only what changed: the bases a chained
 * manifest reads files from (archive.h, "Chains"), found, checked
 * against what the manifest recorded of them, and read back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive_int.h"
#include "dgm/buf.h"

bool ar_id_valid(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n <= 64 && id[0] != '.' &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static long base_pos(const dgm_archive_manifest *m, const char *id)
{
	for (size_t i = 0; i < m->n_bases; i++)
		if (!strcmp(m->bases[i].id, id))
			return (long)i;
	return -1;
}

int ar_bases_check(const dgm_archive_manifest *m, dgm_error *err)
{
	char show[AR_SHOW_MAX];
	unsigned char *used = dgm_xcalloc(m->n_bases + 1, 1);
	int ret = 0;

	for (size_t i = 0; i < m->n_entries && !ret; i++) {
		long b = m->entries[i].in ? base_pos(m, m->entries[i].in) : -1;

		if (m->entries[i].in && b < 0)
			ret = dgm_error_set(err, DGM_E_ARCHIVE, "'%s' is held by snapshot '%s', which "
					    "is not among its bases", ar_show(show, sizeof(show),
					    m->entries[i].path), m->entries[i].in);
		else if (b >= 0)
			used[b] = 1;
	}
	for (size_t i = 0; i < m->n_bases && !ret; i++)
		if (!used[i])
			ret = dgm_error_set(err, DGM_E_ARCHIVE, "base '%s' holds none of its files",
					    m->bases[i].id);
	free(used);
	return ret;
}

char *ar_base_path(const char *archive, const char *id)
{
	char *dir = ar_dirname(archive), *top = ar_dirname(dir), *name = ar_basename(archive);
	char *out = dgm_xasprintf("%s/%s/%s", top, id, name);

	free(dir);
	free(top);
	free(name);
	return out;
}

void ar_chain_prefix(const ar_base *b, dgm_error *err)
{
	char show[AR_SHOW_MAX];

	dgm_error_prefix(err, "snapshot '%s' (archive '%s'), which holds '%s' of this one",
			 b->rec->id, b->path, ar_show(show, sizeof(show), b->first ? b->first : ""));
}

/* The entry that base b holds for me: the same file, held there. */
static int match_ref(ar_base *b, const dgm_archive_entry *me, long ours, dgm_error *err)
{
	char show[AR_SHOW_MAX];
	long pos = ar_manifest_pos(&b->m, me->path);
	const dgm_archive_entry *be = pos >= 0 ? &b->m.entries[pos] : NULL;

	ar_show(show, sizeof(show), me->path);
	if (!be || be->in || be->type != DGM_ARCHIVE_FILE)
		return dgm_error_set(err, DGM_E_ARCHIVE, "it does not hold '%s'", show);
	if (be->mode != me->mode || be->mtime != me->mtime || be->size != me->size ||
	    strcmp(be->sha256, me->sha256))
		return dgm_error_set(err, DGM_E_ARCHIVE, "its '%s' is not the file recorded", show);
	b->ours[pos] = ours;
	return 0;
}

static int open_base(ar_base *b, const dgm_archive_manifest *m, const char *archive,
		     size_t root_len, dgm_error *err)
{
	char *mpath;
	struct stat st;
	int rc;

	b->path = ar_base_path(archive, b->rec->id);
	for (size_t i = 0; i < m->n_entries && !b->first; i++)
		if (m->entries[i].in && !strcmp(m->entries[i].in, b->rec->id))
			b->first = m->entries[i].path;
	if (stat(b->path, &st) != 0)
		return dgm_error_errno(err, DGM_E_ARCHIVE, "its archive is missing");
	if (st.st_size != b->rec->archive_bytes)
		return dgm_error_set(err, DGM_E_ARCHIVE, "its archive has %lld bytes, not the %lld "
				     "recorded", (long long)st.st_size, b->rec->archive_bytes);
	mpath = dgm_archive_manifest_path(b->path);
	rc = dgm_archive_manifest_read(&b->m, mpath, err);
	free(mpath);
	if (rc || ar_manifest_check(&b->m, root_len, err))
		return -1;
	if (strcmp(b->m.archive_sha256, b->rec->archive_sha256) ||
	    b->m.archive_bytes != b->rec->archive_bytes)
		return dgm_error_set(err, DGM_E_ARCHIVE, "its archive is not the one recorded "
				     "(sha256 differs)");
	if (b->m.n_extras || m->n_extras || strcmp(b->m.store, m->store))
		return dgm_error_set(err, DGM_E_ARCHIVE, "it is not an archive of the same store "
				     "alone");
	b->ours = dgm_xmalloc((b->m.n_entries + 1) * sizeof(*b->ours));
	for (size_t i = 0; i < b->m.n_entries; i++)
		b->ours[i] = -1;
	for (size_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].in && !strcmp(m->entries[i].in, b->rec->id) &&
		    match_ref(b, &m->entries[i], (long)i, err))
			return -1;
	return 0;
}

int ar_chain_open(ar_chain *c, const dgm_archive_manifest *m, const char *archive,
		  size_t root_len, dgm_error *err)
{
	memset(c, 0, sizeof(*c));
	c->bases = dgm_xcalloc(m->n_bases + 1, sizeof(*c->bases));
	for (size_t i = 0; i < m->n_bases; i++) {
		ar_base *b = &c->bases[c->n++];

		b->rec = &m->bases[i];
		if (open_base(b, m, archive, root_len, err)) {
			ar_chain_prefix(b, err);
			dgm_error_hint(err, "a snapshot's model store needs every archive of its chain: "
				       "restore that snapshot's folder, or take a new snapshot");
			return -1;
		}
	}
	return 0;
}

int ar_chain_verify(const ar_chain *c, dgm_error *err)
{
	for (size_t i = 0; i < c->n; i++)
		if (ar_verify_archive(&c->bases[i].m, c->bases[i].path, err)) {
			ar_chain_prefix(&c->bases[i], err);
			return -1;
		}
	return 0;
}

void ar_chain_free(ar_chain *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->bases[i].path);
		free(c->bases[i].ours);
		dgm_archive_manifest_free(&c->bases[i].m);
	}
	free(c->bases);
	memset(c, 0, sizeof(*c));
}
