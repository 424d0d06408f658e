/*
 * ratelimit: per-key token buckets in a small open hash (see ratelimit.h).
 *
 * A bucket's level may go negative: each caller reserves its token at once and
 * is told how long to wait, so concurrent callers queue up in order instead
 * of all retrying when one token appears.
 */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct ratelimit_bucket {
	char *key;
	double tokens;
	int64_t updated_ms;
};

struct ratelimit {
	double rate;		/* tokens per millisecond */
	double burst;
	struct ratelimit_bucket *slots;
	size_t nslots;		/* power of two */
	size_t used;
};

static uint64_t ratelimit_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct ratelimit *ratelimit_new(double rate, double burst)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	rl->rate = rate / 1000.0;
	rl->burst = burst < 1 ? 1 : burst;
	rl->nslots = 64;
	rl->slots = xcalloc(rl->nslots, sizeof(*rl->slots));
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (size_t i = 0; i < rl->nslots; i++)
		free(rl->slots[i].key);
	free(rl->slots);
	free(rl);
}

static struct ratelimit_bucket *ratelimit_find(struct ratelimit_bucket *slots, size_t nslots, const char *key)
{
	size_t i = ratelimit_hash(key) & (nslots - 1);

	while (slots[i].key != NULL && strcmp(slots[i].key, key) != 0)
		i = (i + 1) & (nslots - 1);
	return &slots[i];
}

static void ratelimit_grow(struct ratelimit *rl, size_t nslots)
{
	struct ratelimit_bucket *slots = xcalloc(nslots, sizeof(*slots));

	for (size_t i = 0; i < rl->nslots; i++)
		if (rl->slots[i].key != NULL)
			*ratelimit_find(slots, nslots, rl->slots[i].key) = rl->slots[i];
	free(rl->slots);
	rl->slots = slots;
	rl->nslots = nslots;
}

int64_t ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms)
{
	struct ratelimit_bucket *b;

	if (rl->used * 2 >= rl->nslots)
		ratelimit_grow(rl, rl->nslots * 2);
	b = ratelimit_find(rl->slots, rl->nslots, key);
	if (b->key == NULL) {
		b->key = xstrdup(key);
		b->tokens = rl->burst;
		b->updated_ms = now_ms;
		rl->used++;
	}
	if (now_ms > b->updated_ms) {
		b->tokens += (double)(now_ms - b->updated_ms) * rl->rate;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->updated_ms = now_ms;
	}
	b->tokens -= 1;
	if (b->tokens >= 0)
		return 0;
	return (int64_t)(-b->tokens / rl->rate + 0.999);
}

void ratelimit_prune(struct ratelimit *rl, int64_t now_ms)
{
	struct ratelimit_bucket *slots = xcalloc(rl->nslots, sizeof(*slots));

	rl->used = 0;
	for (size_t i = 0; i < rl->nslots; i++) {
		struct ratelimit_bucket *b = &rl->slots[i];

		if (b->key == NULL)
			continue;
		/* A bucket that would be full again carries no information. */
		if (b->tokens + (double)(now_ms - b->updated_ms) * rl->rate >= rl->burst) {
			free(b->key);
			continue;
		}
		*ratelimit_find(slots, rl->nslots, b->key) = *b;
		rl->used++;
	}
	free(rl->slots);
	rl->slots = slots;
}

size_t ratelimit_size(const struct ratelimit *rl)
{
	return rl->used;
}
