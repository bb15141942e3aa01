/* verify.c - dgm_archive_verify: check the manifest as a restore would,
 * then read the archive back and compare it with the manifest, entry by
 * entry, and the file as a whole. */
#include <stdlib.h>
#include <string.h>

#include "archive_int.h"
#include "dgm/buf.h"

/* *mismatch tells a difference from the manifest (true) from an archive
 * that cannot be read (false). */
static int verify_entry(ar_reader *r, struct archive_entry *e, const dgm_archive_manifest *m,
			unsigned char *seen, bool *mismatch, dgm_error *err)
{
	char sha[65];
	long long len;
	long pos;

	*mismatch = true;
	if (ar_check_next(&pos, e, m, seen, err))
		return -1;
	if (m->entries[pos].type != DGM_ARCHIVE_FILE)
		return 0;
	*mismatch = false;
	if (ar_reader_content(r, sha, &len, NULL, NULL, err))
		return -1;
	*mismatch = true;
	return ar_content_check(&m->entries[pos], sha, len, err);
}

int ar_verify_archive(const dgm_archive_manifest *m, const char *archive, dgm_error *err)
{
	unsigned char *seen = dgm_xcalloc(m->n_entries + 1, 1);
	struct archive_entry *e;
	ar_reader r;
	bool mismatch = false;
	int rc, ret = -1;

	memset(&r, 0, sizeof(r));
	r.fd = -1;
	if (ar_reader_open(&r, archive, err))
		goto out;
	while ((rc = ar_reader_next(&r, &e, err)) == 1)
		if (verify_entry(&r, e, m, seen, &mismatch, err))
			goto out;
	mismatch = rc >= 0; /* rc < 0: the archive cannot be read */
	if (rc < 0)
		goto out;
	if (ar_all_seen(m, seen, err) || ar_reader_finish(&r, m, err))
		goto out;
	ret = 0;
out:
	if (ret && mismatch)
		dgm_error_prefix(err, "archive '%s' does not match its manifest", archive);
	ar_reader_close(&r);
	free(seen);
	return ret;
}

/* The manifest at mpath, checked; this archive read back; then the
 * bases, read back too when all is set. */
static int verify(const char *archive, const char *mpath, bool all, dgm_error *err)
{
	dgm_archive_manifest m;
	ar_chain chain = { 0 };
	size_t root_len;
	int ret = -1;

	if (dgm_archive_manifest_read(&m, mpath, err))
		return -1;
	root_len = strlen(m.store) + AR_STAGING_EXTRA;
	/* what a restore of the recorded store would refuse is not intact */
	if (ar_manifest_check(&m, root_len, err)) {
		dgm_error_prefix(err, "archive '%s' would not be restored", archive);
		goto out;
	}
	if (ar_verify_archive(&m, archive, err) || ar_chain_open(&chain, &m, archive, root_len, err))
		goto out;
	if (all && ar_chain_verify(&chain, err))
		goto out;
	ret = 0;
out:
	ar_chain_free(&chain);
	dgm_archive_manifest_free(&m);
	return ret;
}

int dgm_archive_verify(const char *archive, const char *manifest, dgm_error *err)
{
	char *mpath = manifest ? dgm_xstrdup(manifest) : dgm_archive_manifest_path(archive);
	int ret = verify(archive, mpath, true, err);

	free(mpath);
	return ret;
}

int dgm_archive_verify_new(const char *archive, dgm_error *err)
{
	char *mpath = dgm_archive_manifest_path(archive);
	int ret = verify(archive, mpath, false, err);

	free(mpath);
	return ret;
}

int dgm_archive_bases(char ***ids, size_t *n, const char *archive, dgm_error *err)
{
	char *mpath = dgm_archive_manifest_path(archive);
	dgm_archive_manifest m;
	int ret = dgm_archive_manifest_read(&m, mpath, err);

	*ids = NULL;
	*n = 0;
	if (ret == 0) {
		*ids = dgm_xcalloc(m.n_bases + 1, sizeof(**ids));
		for (size_t i = 0; i < m.n_bases; i++)
			(*ids)[i] = dgm_xstrdup(m.bases[i].id);
		*n = m.n_bases;
		dgm_archive_manifest_free(&m);
	}
	free(mpath);
	return ret;
}
