/*
 * heapscan: is a copy of a secret still anywhere in the process's heap?
 *
 * A test notes each secret it sees (heapscan_note), lets everything that held
 * one be freed, then asks heapscan_find() whether a piece of it is still in
 * memory: the brk heap and every anonymous read-write mapping (malloc's
 * arenas and large blocks, thread stacks), read through /proc/self/maps. A
 * freed block keeps its bytes until it is reused, so a buffer freed without
 * being wiped is found there, whoever freed it: our code, libcurl, cJSON or
 * the C library. The main thread's stack is not scanned.
 *
 * What is searched for is the last HEAPSCAN_PIECE bytes of each secret (the
 * allocator writes its list pointers over the first bytes of a freed block),
 * kept masked so that the note itself is no match; the piece is unmasked only
 * on the stack, while it is searched for. Under AddressSanitizer the scan
 * cannot run (its shadow memory is terabytes of anonymous mappings):
 * heapscan_available() is false there.
 */
#ifndef HEAPSCAN_H
#define HEAPSCAN_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAPSCAN_PIECE 24
#define HEAPSCAN_MAX 128
#define HEAPSCAN_MASK 0xa5

#if defined(__SANITIZE_ADDRESS__)
#define HEAPSCAN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAPSCAN_ASAN 1
#endif
#endif

struct heapscan_secret {
	char what[48];
	unsigned char masked[HEAPSCAN_PIECE];	/* each byte ^ HEAPSCAN_MASK */
};

static struct heapscan_secret heapscan_secrets[HEAPSCAN_MAX];
static size_t heapscan_count;

static inline bool heapscan_available(void)
{
#ifdef HEAPSCAN_ASAN
	return false;
#else
	return true;
#endif
}

/* Remember the tail of secret s (at least HEAPSCAN_PIECE + 16 bytes long) under the name what. */
static inline void heapscan_note(const char *what, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;
	unsigned char m[HEAPSCAN_PIECE];

	if (len < HEAPSCAN_PIECE + 16 || heapscan_count == HEAPSCAN_MAX) {
		fprintf(stderr, "heapscan: cannot note %s (%zu bytes)\n", what, len);
		abort();
	}
	for (size_t i = 0; i < HEAPSCAN_PIECE; i++)
		m[i] = (unsigned char)s[len - HEAPSCAN_PIECE + i] ^ HEAPSCAN_MASK;
	for (size_t i = 0; i < heapscan_count; i++)
		if (memcmp(heapscan_secrets[i].masked, m, HEAPSCAN_PIECE) == 0)
			return;
	snprintf(heapscan_secrets[heapscan_count].what, sizeof(heapscan_secrets[0].what), "%s", what);
	memcpy(heapscan_secrets[heapscan_count].masked, m, HEAPSCAN_PIECE);
	heapscan_count++;
}

static inline bool heapscan_region_has(const unsigned char *lo, const unsigned char *hi, const unsigned char *piece)
{
	const unsigned char *p = lo;

	while (hi - p >= HEAPSCAN_PIECE) {
		p = memchr(p, piece[0], (size_t)(hi - p) - HEAPSCAN_PIECE + 1);
		if (p == NULL)
			return false;
		if (memcmp(p, piece, HEAPSCAN_PIECE) == 0)
			return true;
		p++;
	}
	return false;
}

/* Is piece (HEAPSCAN_PIECE bytes) anywhere in the heap or an anonymous read-write mapping? */
static inline bool heapscan_has(const unsigned char *piece)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;

	if (maps == NULL)
		abort();
	while (!found && fgets(line, sizeof(line), maps) != NULL) {
		unsigned long lo, hi, inode;
		char perms[8], path[256] = "";
		unsigned long long off;
		unsigned dmaj, dmin;

		if (sscanf(line, "%lx-%lx %7s %llx %x:%x %lu %255s", &lo, &hi, perms, &off, &dmaj, &dmin, &inode,
			   path) < 7)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w')
			continue;
		if (path[0] != '\0' && strcmp(path, "[heap]") != 0)
			continue;
		found = heapscan_region_has((const unsigned char *)lo, (const unsigned char *)hi, piece);
	}
	fclose(maps);
	return found;
}

/* The names of the noted secrets still in memory ("an access token, the client secret"), or NULL. */
static inline const char *heapscan_find(void)
{
	static char found_names[1024];
	size_t used = 0;

	found_names[0] = '\0';
	for (size_t i = 0; i < heapscan_count; i++) {
		unsigned char piece[HEAPSCAN_PIECE];
		bool found;

		for (size_t j = 0; j < HEAPSCAN_PIECE; j++)
			piece[j] = heapscan_secrets[i].masked[j] ^ HEAPSCAN_MASK;
		found = heapscan_has(piece);
		memset(piece, 0, sizeof(piece));
		if (found && strstr(found_names, heapscan_secrets[i].what) == NULL && used < sizeof(found_names))
			used += (size_t)snprintf(found_names + used, sizeof(found_names) - used, "%s%s",
						 used ? ", " : "", heapscan_secrets[i].what);
	}
	return found_names[0] != '\0' ? found_names : NULL;
}

/* Forget every noted secret. */
static inline void heapscan_reset(void)
{
	heapscan_count = 0;
}

#endif
