/* json.h - small helpers around jansson shared by the run records. */
#ifndef DGM_JSON_H
#define DGM_JSON_H

#include <jansson.h>
#include <stddef.h>

/* A JSON array of the n strings of v (a new reference). */
json_t *dgm_json_strs(char *const *v, size_t n);

#endif
