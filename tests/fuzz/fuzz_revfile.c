/* fuzz_revfile.c - one revision file read as text (src/alembic/revfile.c),
 * under a name that gives no id and under a legacy "<hex>.py" name. */
#include <string.h>

#include "dgm/alembic.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "versions/add_things.py", "versions/1975ea83b712.py" };

	for (size_t i = 0; i < 2; i++) {
		dgm_alembic_revfile rf;
		dgm_error err = DGM_ERROR_INIT;

		if (dgm_alembic_revfile_parse(&rf, paths[i], (const char *)data, size, &err) == 0)
			dgm_alembic_revfile_free(&rf);
	}
	return 0;
}
