/* gendoc.c - writes dgmigrate's man page or bash completion from the
 * command and option tables (make doc, make install). */
#include <stdio.h>
#include <string.h>

#include "dgm/cli.h"

#ifndef DGM_VERSION
#define DGM_VERSION "0.1.0-dev"
#endif

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "man"))
		dgm_cli_write_man(stdout, DGM_VERSION);
	else if (argc == 2 && !strcmp(argv[1], "bash"))
		dgm_cli_write_bash_completion(stdout);
	else {
		fprintf(stderr, "usage: gendoc man|bash\n");
		return 2;
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
