/* json.c - small jansson helpers. */
#include "dgm/buf.h"
#include "dgm/json.h"
#include "dgm/log.h"

json_t *dgm_json_strs(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *redacted_str(const char *s, dgm_buf *tmp)
{
	dgm_redact(s, tmp);
	return json_string(dgm_buf_cstr(tmp));
}

static json_t *redacted(json_t *j, dgm_buf *tmp)
{
	json_t *out, *x;
	const char *key;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_STRING:
		return redacted_str(json_string_value(j), tmp);
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(j, i, x)
			json_array_append_new(out, redacted(x, tmp));
		return out;
	case JSON_OBJECT:
		out = json_object();
		json_object_foreach(j, key, x) {
			json_t *v = redacted(x, tmp);

			/* keys can hold values too (a step named after a variable) */
			dgm_redact(key, tmp);
			json_object_set_new(out, dgm_buf_cstr(tmp), v);
		}
		return out;
	default:
		return json_incref(j);
	}
}

json_t *dgm_json_redacted(json_t *j)
{
	dgm_buf tmp = DGM_BUF_INIT;
	json_t *out = j ? redacted(j, &tmp) : NULL;

	dgm_buf_free(&tmp);
	return out;
}
