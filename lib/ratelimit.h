/*
 * ratelimit: a token bucket per key (a user id), so one process keeps its
 * calls to Google under GOOGLE_USER_QPS for each user.
 *
 * Google's own quota is per minute and per user; staying under 10 calls a
 * second per user keeps a burst of leads for one busy user from turning into
 * rate-limit errors for that user. The limit is per process: with several
 * workers the bound is workers x rate, and Google's 403/429 answers are still
 * retried with backoff.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* rate tokens per second, burst at most. The caller frees it with ratelimit_free(). */
struct ratelimit *ratelimit_new(double rate, double burst);
/* ratelimit_free(NULL) is a no-op. */
void ratelimit_free(struct ratelimit *rl);

/*
 * Take one token for key at now_ms (a monotonic clock). Returns 0 when the
 * call may go now, else how many milliseconds to wait; the token is reserved
 * either way, so a caller who waits that long must not ask again.
 */
int64_t ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms);

/* Forget keys whose bucket has refilled completely. */
void ratelimit_prune(struct ratelimit *rl, int64_t now_ms);

/* Number of keys tracked (for tests and metrics). */
size_t ratelimit_size(const struct ratelimit *rl);

#endif
