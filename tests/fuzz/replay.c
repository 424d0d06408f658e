/*
 * replay: a target's inputs as a unit test, without libFuzzer.
 *
 * Every build runs each fuzz target over its seed corpus
 * (tests/fuzz/corpus/<target>/) and the inputs that once crashed it
 * (tests/fuzz/regressions/<target>/), one TAP line per file. A crash is a
 * failed test; under the ASan build a memory error is one too. Files named
 * README* explain a folder and are not inputs.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int replay_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run one file; 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return -1;
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int count = 0;

	for (int a = 1; a < argc; a++) {
		DIR *d = opendir(argv[a]);
		struct dirent *e;
		char **names = NULL;
		size_t nnames = 0;

		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0)
				continue;
			names = realloc(names, (nnames + 1) * sizeof(*names));
			if (names == NULL || (names[nnames] = strdup(e->d_name)) == NULL)
				abort();
			nnames++;
		}
		closedir(d);
		qsort(names, nnames, sizeof(*names), replay_compare);
		for (size_t i = 0; i < nnames; i++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[a], names[i]);
			count++;
			printf("%sok %d - %s\n", replay_file(path) == 0 ? "" : "not ", count, path);
			fflush(stdout);
			free(names[i]);
		}
		free(names);
	}
	if (count == 0)
		printf("not ok 1 - no inputs found: a target must have a seed corpus\n");
	printf("1..%d\n", count ? count : 1);
	return count ? 0 : 1;
}
