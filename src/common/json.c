/* json.c - small jansson helpers. */
#include "dgm/json.h"

json_t *dgm_json_strs(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}
