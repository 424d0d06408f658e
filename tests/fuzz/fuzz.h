/*
 * fuzz: what the targets in tests/fuzz share.
 *
 * Each target is one LLVMFuzzerTestOneInput() over the project's real code.
 * Built with -Dfuzz=true (clang) it links libFuzzer; in every other build it
 * links replay.c, which feeds it the seed corpus and the saved crashes as
 * unit tests. A broken invariant calls fuzz_fail(), which aborts: to the
 * fuzzer that is a crash like any other, with the input saved.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_FIELDS 16

/* The input cut at NUL bytes into up to n strings (missing ones are ""). Free fields with fuzz_fields_free(). */
struct fuzz_fields {
	char *buf;
	const char *v[FUZZ_MAX_FIELDS];
};

static inline void fuzz_fields_split(const uint8_t *data, size_t size, struct fuzz_fields *f, size_t n)
{
	size_t k = 0;
	char *p;

	f->buf = malloc(size + 1);
	if (f->buf == NULL)
		abort();
	memcpy(f->buf, data, size);
	f->buf[size] = '\0';
	p = f->buf;
	for (size_t i = 0; i < n && i < FUZZ_MAX_FIELDS; i++) {
		f->v[i] = "";
		if (k <= size) {
			f->v[i] = p;
			k += strlen(p) + 1;
			p = f->buf + (k <= size ? k : size);
		}
	}
}

static inline void fuzz_fields_free(struct fuzz_fields *f)
{
	free(f->buf);
}

/* The input as one NUL-terminated string (cut at the first NUL). The caller frees it. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#define fuzz_fail(...)                                                                                         \
	do {                                                                                                   \
		fprintf(stderr, "fuzz invariant broken: " __VA_ARGS__);                                        \
		fputc('\n', stderr);                                                                           \
		abort();                                                                                       \
	} while (0)

#endif
