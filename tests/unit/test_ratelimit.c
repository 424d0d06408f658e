/*
 * Unit tests of lib/ratelimit: bursts, steady rates, queued reservations,
 * independence of keys, and pruning.
 */
#include <stdio.h>

#include "ratelimit.h"
#include "tap.h"

int main(void)
{
	struct ratelimit *rl = ratelimit_new(10, 10);
	int immediate = 0;
	int64_t last_wait = 0;
	char key[32];

	for (int i = 0; i < 10; i++)
		immediate += ratelimit_take(rl, "user-a", 1000) == 0;
	CHECK_INT(immediate, 10, "a full bucket lets a burst of 10 through at once");
	last_wait = ratelimit_take(rl, "user-a", 1000);
	CHECK_INT(last_wait, 100, "the 11th call waits one token's time (100 ms at 10/s)");
	CHECK_INT(ratelimit_take(rl, "user-a", 1000), 200, "the 12th queues behind it");
	CHECK_INT(ratelimit_take(rl, "user-b", 1000), 0, "another user is not affected");
	CHECK_INT(ratelimit_take(rl, "user-a", 1300), 0, "after the waits have passed the next call goes");

	/* Steady state: 1000 calls spaced by their waits take ~100 s of simulated time. */
	{
		int64_t now = 100000, calls = 0;

		while (calls < 1000) {
			int64_t w = ratelimit_take(rl, "user-c", now);

			now += w;
			calls++;
		}
		CHECK(now - 100000 >= 98000 && now - 100000 <= 100100,
		      "1000 calls at 10/s span about 99 s (got %lld ms)", (long long)(now - 100000));
	}

	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "u%d", i);
		ratelimit_take(rl, key, 200000);
	}
	CHECK(ratelimit_size(rl) >= 500, "many keys fit (table grows)");
	ratelimit_prune(rl, 500000);
	CHECK_INT(ratelimit_size(rl), 0, "idle keys are pruned");
	CHECK_INT(ratelimit_take(rl, "u7", 500000), 0, "a pruned key starts with a full bucket");
	ratelimit_free(rl);
	ratelimit_free(NULL);
	return tap_done();
}
