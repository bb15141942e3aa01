/* json.h - small helpers around jansson shared by the run records. */
#ifndef DGM_JSON_H
#define DGM_JSON_H

#include <jansson.h>
#include <stddef.h>

/* A JSON array of the n strings of v (a new reference). */
json_t *dgm_json_strs(char *const *v, size_t n);

/* A deep copy of j with every registered secret masked in its string
 * values and keys (dgm_redact), for JSON that leaves dgmigrate: redact
 * the values, never the serialized text, whose literals (true, 0, null)
 * and escapes a secret could otherwise match. NULL stays NULL. */
json_t *dgm_json_redacted(json_t *j);

#endif
