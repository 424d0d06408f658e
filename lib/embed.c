/*
 * embed: lookup of files compiled into the binary (see embed.h).
 */
#include "embed.h"

#include <string.h>

const struct embed_file *embed_find(const struct embed_file *files, size_t n, const char *name)
{
	for (size_t i = 0; name != NULL && i < n; i++)
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	return NULL;
}
