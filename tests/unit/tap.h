/*
 * tap: the smallest useful test harness, printing TAP for meson's
 * `protocol: 'tap'` so each check shows up in the test log by name.
 *
 *	CHECK(x == 1, "x is one");
 *	CHECK_STR(got, "want", "formats the date");
 *	return tap_done();
 *
 * A failing check prints what it expected and what it got, and the program
 * exits non-zero; there is no way to skip a check and still pass.
 */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static inline int tap_check(int ok, const char *what, const char *file, int line)
{
	char clean[512];
	size_t i;

	/* A description with a line break would end the TAP line early. */
	for (i = 0; what[i] != '\0' && i < sizeof(clean) - 1; i++)
		clean[i] = what[i] == '\n' || what[i] == '\r' ? ' ' : what[i];
	clean[i] = '\0';
	tap_count++;
	printf("%sok %d - %s\n", ok ? "" : "not ", tap_count, clean);
	if (!ok) {
		tap_failed++;
		printf("#   at %s:%d\n", file, line);
	}
	fflush(stdout);
	return ok;
}

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		char tap_what_[512];                                            \
		snprintf(tap_what_, sizeof(tap_what_), __VA_ARGS__);            \
		tap_check(!!(cond), tap_what_, __FILE__, __LINE__);             \
	} while (0)

#define CHECK_STR(got, want, ...)                                               \
	do {                                                                    \
		const char *tap_g_ = (got), *tap_w_ = (want);                   \
		char tap_what_[512];                                            \
		int tap_ok_ = (tap_g_ == NULL && tap_w_ == NULL) ||             \
			      (tap_g_ != NULL && tap_w_ != NULL && strcmp(tap_g_, tap_w_) == 0); \
		snprintf(tap_what_, sizeof(tap_what_), __VA_ARGS__);            \
		if (!tap_check(tap_ok_, tap_what_, __FILE__, __LINE__))         \
			printf("#   got:  %s\n#   want: %s\n", tap_g_ ? tap_g_ : "(null)", \
			       tap_w_ ? tap_w_ : "(null)");                     \
	} while (0)

#define CHECK_INT(got, want, ...)                                               \
	do {                                                                    \
		long long tap_g_ = (long long)(got), tap_w_ = (long long)(want); \
		char tap_what_[512];                                            \
		snprintf(tap_what_, sizeof(tap_what_), __VA_ARGS__);            \
		if (!tap_check(tap_g_ == tap_w_, tap_what_, __FILE__, __LINE__)) \
			printf("#   got:  %lld\n#   want: %lld\n", tap_g_, tap_w_); \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_count == 0) {
		printf("# no checks ran\n");
		return 1;
	}
	return tap_failed ? 1 : 0;
}

#endif
