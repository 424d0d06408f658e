/*
 * map: string-keyed hash map with separate chaining.
 *
 * The stand-in keeps tokens, codes and tens of thousands of events in
 * memory, and benchmark runs look them up on every request, so lookups must
 * not be linear. Keys come from HTTP clients, so they are hashed with
 * libsodium's keyed SipHash under a random key: a client cannot pick keys
 * that all land in one bucket.
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "xmalloc.h"

struct map_entry {
	char *key;
	void *value;
	uint64_t hash;
	struct map_entry *next;
};

struct map {
	struct map_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	void (*free_value)(void *);
	unsigned char key[crypto_shorthash_KEYBYTES];
};

static uint64_t map_hash(const struct map *m, const char *key)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)key, strlen(key), m->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

struct map *map_new(void (*free_value)(void *))
{
	struct map *m = xcalloc(1, sizeof(*m));

	m->nbuckets = 64;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	m->free_value = free_value;
	randombytes_buf(m->key, sizeof(m->key));
	return m;
}

static void map_entry_free(struct map *m, struct map_entry *e)
{
	if (m->free_value != NULL)
		m->free_value(e->value);
	free(e->key);
	free(e);
}

void map_clear(struct map *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct map_entry *e = m->buckets[i];

		while (e != NULL) {
			struct map_entry *next = e->next;

			map_entry_free(m, e);
			e = next;
		}
		m->buckets[i] = NULL;
	}
	m->count = 0;
}

void map_free(struct map *m)
{
	if (m == NULL)
		return;
	map_clear(m);
	free(m->buckets);
	free(m);
}

size_t map_count(const struct map *m)
{
	return m->count;
}

static struct map_entry **map_slot(const struct map *m, const char *key, uint64_t hash)
{
	struct map_entry **pp = &m->buckets[hash & (m->nbuckets - 1)];

	while (*pp != NULL && ((*pp)->hash != hash || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

void *map_get(const struct map *m, const char *key)
{
	struct map_entry **pp = map_slot(m, key, map_hash(m, key));

	return *pp != NULL ? (*pp)->value : NULL;
}

/* Keep chains short: double the table once it is as full as it is wide. */
static void map_grow(struct map *m)
{
	size_t n = m->nbuckets * 2;
	struct map_entry **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct map_entry *e = m->buckets[i];

		while (e != NULL) {
			struct map_entry *next = e->next;

			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void map_set(struct map *m, const char *key, void *value)
{
	uint64_t hash = map_hash(m, key);
	struct map_entry **pp = map_slot(m, key, hash);
	struct map_entry *e;

	if (*pp != NULL) {
		if (m->free_value != NULL && (*pp)->value != value)
			m->free_value((*pp)->value);
		(*pp)->value = value;
		return;
	}
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->value = value;
	e->hash = hash;
	*pp = e;
	if (++m->count > m->nbuckets)
		map_grow(m);
}

int map_del(struct map *m, const char *key)
{
	struct map_entry **pp = map_slot(m, key, map_hash(m, key));
	struct map_entry *e = *pp;

	if (e == NULL)
		return -1;
	*pp = e->next;
	map_entry_free(m, e);
	m->count--;
	return 0;
}

void map_sweep(struct map *m, bool (*fn)(const char *key, void *value, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct map_entry **pp = &m->buckets[i];

		while (*pp != NULL) {
			struct map_entry *e = *pp;

			if (fn(e->key, e->value, arg)) {
				*pp = e->next;
				map_entry_free(m, e);
				m->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}
