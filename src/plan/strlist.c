/* strlist.c - the plan's string lists. Below both plan.c (which frees
 * plans) and schema.c (which fills them), so that neither includes the
 * other's work. */
#include <stdlib.h>

#include "dgm/plan.h"

void dgm_strlist_free(dgm_strlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}
