/* test_snapshot_hmac.c - the HMAC that signs snapshots (src/snapshot/
 * hmac.c): HMAC-SHA-256 itself against RFC 4231, a part's MAC against
 * `openssl dgst -sha256 -hmac`, and what it is bound to. The forged
 * snapshots are in tests/integration/t_hmac.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/snapshot/internal.h"

static void key_of(dgm_snapshot_key *k, const char *text)
{
	memset(k, 0, sizeof(*k));
	k->len = strlen(text);
	memcpy(k->bytes, text, k->len);
}

/* RFC 4231, test case 2: key "Jefe". */
static void hmac_sha256_matches_rfc4231(void **state)
{
	const char *msg = "what do ya want for nothing?";
	const void *chunks[] = { "what do ya ", msg + 11 };
	const size_t lens[] = { 11, strlen(msg) - 11 };
	char hex[65];

	assert_int_equal(dgm_snapshot_mac(hex, (const unsigned char *)"Jefe", 4, chunks, lens, 2), 0);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* python3 -c "import sys; sys.stdout.buffer.write(b'dgmigrate-snapshot-hmac-v1\x00
 *   20261129T064955Z-3f2a\x00db.sha256\x00abc\n')" |
 *   openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef */
static void part_mac_matches_openssl(void **state)
{
	dgm_snapshot_key k;
	char hex[65];

	key_of(&k, "0123456789abcdef0123456789abcdef");
	assert_int_equal(dgm_snapshot_part_mac(hex, &k, "20261129T064955Z-3f2a", "db.sha256",
					       "abc\n", 4), 0);
	assert_string_equal(hex, "13d55f59eda3468e8b2fb6b92ce46d73f9b4da30db8d1663d9ef237a476f2626");
}

/* A part's MAC is bound to its snapshot, its name and its key: none can
 * be moved to another snapshot or part, nor made without the key. */
static void part_mac_is_bound_to_id_part_and_key(void **state)
{
	dgm_snapshot_key k, other;
	char a[65], b[65];

	key_of(&k, "0123456789abcdef0123456789abcdef");
	key_of(&other, "0123456789abcdef0123456789abcdeF");
	assert_int_equal(dgm_snapshot_part_mac(a, &k, "s1", "db.sha256", "x", 1), 0);
	assert_int_equal(dgm_snapshot_part_mac(b, &k, "s2", "db.sha256", "x", 1), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(dgm_snapshot_part_mac(b, &k, "s1", "writes.json", "x", 1), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(dgm_snapshot_part_mac(b, &other, "s1", "db.sha256", "x", 1), 0);
	assert_string_not_equal(a, b);
	/* the separators keep "s1"+"0db.sha256" from reading as "s10"+"db.sha256" */
	assert_int_equal(dgm_snapshot_part_mac(b, &k, "s1\0", "db.sha256", "x", 1), 0);
	assert_string_equal(a, b);
	assert_int_equal(dgm_snapshot_part_mac(b, &k, "s", "1db.sha256", "x", 1), 0);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hmac_sha256_matches_rfc4231),
		cmocka_unit_test(part_mac_matches_openssl),
		cmocka_unit_test(part_mac_is_bound_to_id_part_and_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
