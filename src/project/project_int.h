/* project_int.h - what the files of src/project/ share. */
#ifndef DGM_PROJECT_INT_H
#define DGM_PROJECT_INT_H

#include "dgm/error.h"

/* ini as the tree knows it (*out, malloc'd): relative to the repository's
 * root ROOT (a real path), also when given as an absolute path inside it
 * (symlinks resolved); an absolute path outside it is an error. */
int dgm_project_tree_relative(char **out, const char *root, const char *ini, dgm_error *err);

#endif
