/* fuzz_journal.c - a run's journal (one JSON record a line) read by
 * dgm_journal_parse (src/journal/read.c), which resume and backups prune
 * trust after a crash. */
#include "dgm/journal.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dgm_journal_view v;
	dgm_error err = DGM_ERROR_INIT;

	dgm_journal_parse(&v, (const char *)data, size, "fuzz.jsonl", &err);
	dgm_journal_free(&v);
	return 0;
}
