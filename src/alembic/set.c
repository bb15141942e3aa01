/* set.c - index lists, bit sets and a string hash for the revision
 * graph: a 1,000-revision project must load in milliseconds, so no
 * lookup may scan the whole map. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dgm/buf.h"
#include "alembic_int.h"

void dgm_revlist_push(dgm_revlist *l, long x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = dgm_xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = x;
}

bool dgm_revlist_has(const dgm_revlist *l, long x)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == x)
			return true;
	return false;
}

void dgm_revlist_free(dgm_revlist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static size_t words(size_t n)
{
	return (n + 63) / 64;
}

void dgm_bits_init(dgm_bits *b, size_t n)
{
	b->n = n;
	b->w = dgm_xcalloc(words(n) ? words(n) : 1, sizeof(*b->w));
}

void dgm_bits_free(dgm_bits *b)
{
	free(b->w);
	b->w = NULL;
	b->n = 0;
}

void dgm_bits_copy(dgm_bits *dst, const dgm_bits *src)
{
	dgm_bits_init(dst, src->n);
	memcpy(dst->w, src->w, words(src->n) * sizeof(*src->w));
}

void dgm_bits_and(dgm_bits *dst, const dgm_bits *src)
{
	for (size_t i = 0; i < words(dst->n); i++)
		dst->w[i] &= src->w[i];
}

void dgm_bits_or(dgm_bits *dst, const dgm_bits *src)
{
	for (size_t i = 0; i < words(dst->n); i++)
		dst->w[i] |= src->w[i];
}

void dgm_bits_andnot(dgm_bits *dst, const dgm_bits *src)
{
	for (size_t i = 0; i < words(dst->n); i++)
		dst->w[i] &= ~src->w[i];
}

bool dgm_bits_any(const dgm_bits *b)
{
	for (size_t i = 0; i < words(b->n); i++)
		if (b->w[i])
			return true;
	return false;
}

size_t dgm_bits_count(const dgm_bits *b)
{
	size_t c = 0;

	for (size_t i = 0; i < words(b->n); i++)
		c += (size_t)__builtin_popcountll(b->w[i]);
	return c;
}

/* FNV-1a from a seeded basis, then MurmurHash3's finalizer: the slot
 * (the low bits) then depends on every bit of the seeded state. */
static size_t hash_str(const char *s, uint64_t seed)
{
	uint64_t h = 14695981039346656037ULL ^ seed;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (size_t)h;
}

static uint64_t new_seed(const void *salt)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)(uintptr_t)salt ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)clock();
	return seed;
}

void dgm_strmap_init(dgm_strmap *m, size_t expected)
{
	size_t cap = 16;

	while (cap < expected * 2 + 1)
		cap *= 2;
	m->cap = cap;
	m->count = 0;
	m->seed = new_seed(m);
	m->keys = dgm_xcalloc(cap, sizeof(*m->keys));
	m->vals = dgm_xcalloc(cap, sizeof(*m->vals));
}

void dgm_strmap_free(dgm_strmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t slot_of(const dgm_strmap *m, const char *key)
{
	size_t i = hash_str(key, m->seed) & (m->cap - 1);

	while (m->keys[i] && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void grow(dgm_strmap *m)
{
	dgm_strmap bigger;

	dgm_strmap_init(&bigger, m->cap);
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
			dgm_strmap_put(&bigger, m->keys[i], m->vals[i]);
	dgm_strmap_free(m);
	*m = bigger;
}

bool dgm_strmap_put(dgm_strmap *m, const char *key, size_t val)
{
	size_t i;

	if ((m->count + 1) * 2 > m->cap)
		grow(m);
	i = slot_of(m, key);
	if (m->keys[i])
		return false;
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
	return true;
}

bool dgm_strmap_get(const dgm_strmap *m, const char *key, size_t *val)
{
	size_t i;

	if (!m->cap)
		return false;
	i = slot_of(m, key);
	if (!m->keys[i])
		return false;
	if (val)
		*val = m->vals[i];
	return true;
}
