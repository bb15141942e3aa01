/* fuzz_config.c - the script settings Alembic takes from alembic.ini
 * (src/alembic/config.c): script_location, version_locations and their
 * separators, recursive/sourceless flags, paths made tree-relative; once
 * as the tree sees them, once from a sub-folder with the tree on disk. */
#include "dgm/alembic.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const dgm_alembic_load_opts opts[] = {
		{ NULL, NULL, NULL, false },
		{ NULL, "app", "/srv/repo", true },
	};
	const char *ini[] = { "alembic.ini", "app/db/alembic.ini" };

	for (size_t i = 0; i < 2; i++) {
		dgm_alembic_config cfg;
		dgm_error err = DGM_ERROR_INIT;

		if (dgm_alembic_config_parse(&cfg, ini[i], (const char *)data, size, &opts[i],
					     &err) == 0)
			dgm_alembic_config_free(&cfg);
	}
	return 0;
}
