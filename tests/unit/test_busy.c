/*
 * Unit tests of lib/busy: freeBusy answers as Google writes them, errors
 * inside the 200, and the span arithmetic checked against a minute-by-minute
 * model over random lists.
 */
#include "busy.h"

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tz.h"

static cJSON *parse(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	if (j == NULL)
		abort();
	return j;
}

static void test_reads_google_answers(void)
{
	/* Google's shape: busy times in the asked zone, possibly out of order, overlapping and outside the range. */
	cJSON *a = parse("{\"kind\":\"calendar#freeBusy\",\"timeMin\":\"2026-12-08T09:00:00.000Z\","
			 "\"timeMax\":\"2026-12-08T17:00:00.000Z\",\"calendars\":{\"primary\":{\"busy\":["
			 "{\"start\":\"2026-12-08T13:00:00Z\",\"end\":\"2026-12-08T14:00:00Z\"},"
			 "{\"start\":\"2026-12-08T03:30:00-05:00\",\"end\":\"2026-12-08T04:30:00-05:00\"},"
			 "{\"start\":\"2026-12-08T13:30:00Z\",\"end\":\"2026-12-08T15:00:00Z\"},"
			 "{\"start\":\"2026-12-08T15:00:00Z\",\"end\":\"2026-12-08T15:30:00Z\"},"
			 "{\"start\":\"2026-12-08T16:30:00Z\",\"end\":\"2026-12-08T18:00:00Z\"}]}}}");
	struct busy_list l = { 0 };
	const char *error = "x";
	int64_t from = 1796720400, to = from + 8 * 3600;	/* 09:00Z to 17:00Z */
	cJSON *json;
	char *text;

	CHECK_INT(busy_from_freebusy(a, "primary", from, to, &l, &error), 0, "reads the answer");
	CHECK(error == NULL, "no error for the calendar");
	CHECK_INT((int)l.n, 3, "overlapping and touching spans merge: %zu", l.n);
	CHECK(l.spans[0].start_s == from && l.spans[0].end_s == from + 30 * 60, "a span before the range is clipped");
	CHECK(l.spans[1].start_s == from + 4 * 3600 && l.spans[1].end_s == from + 6.5 * 3600, "13:00-15:30 merged");
	CHECK(l.spans[2].start_s == from + 7.5 * 3600 && l.spans[2].end_s == to, "a span past the range is clipped");
	CHECK(busy_overlaps(&l, from + 5 * 3600, from + 5 * 3600 + 1800), "14:00-14:30 is busy");
	CHECK(!busy_overlaps(&l, from + 6.5 * 3600, from + 7.5 * 3600), "15:30-16:30 is free: ends are exclusive");

	json = busy_to_json(&l, "America/New_York");
	text = cJSON_PrintUnformatted(json);
	CHECK_STR(text,
		  "[{\"start\":\"2026-12-08T04:00:00-05:00\",\"end\":\"2026-12-08T04:30:00-05:00\"},"
		  "{\"start\":\"2026-12-08T08:00:00-05:00\",\"end\":\"2026-12-08T10:30:00-05:00\"},"
		  "{\"start\":\"2026-12-08T11:30:00-05:00\",\"end\":\"2026-12-08T12:00:00-05:00\"}]",
		  "written in the user's zone");
	free(text);
	cJSON_Delete(json);
	text = busy_to_text(&l, "America/New_York", 2);
	CHECK_STR(text,
		  "2026-12-08T04:00:00-05:00 to 2026-12-08T04:30:00-05:00, 2026-12-08T08:00:00-05:00 to "
		  "2026-12-08T10:30:00-05:00 and 1 more",
		  "as text, with a cap");
	free(text);
	text = busy_to_text(&l, NULL, 5);
	CHECK(strstr(text, "2026-12-08T16:30:00+00:00 to 2026-12-08T17:00:00+00:00") != NULL, "UTC without a zone");
	free(text);

	{
		struct busy_list free_time = { 0 };

		busy_free_gaps(&l, from, to, 45 * 60, &free_time);
		CHECK_INT((int)free_time.n, 2, "gaps of at least 45 minutes: 09:30-13:00 and 15:30-16:30");
		CHECK(free_time.spans[0].start_s == from + 1800 && free_time.spans[0].end_s == from + 4 * 3600 &&
			      free_time.spans[1].start_s == from + 6.5 * 3600 &&
			      free_time.spans[1].end_s == from + 7.5 * 3600,
		      "at the right times");
		busy_clear(&free_time);
		busy_free_gaps(&l, from, to, 61 * 60, &free_time);
		CHECK_INT((int)free_time.n, 1, "a 61-minute meeting fits only the morning");
		busy_clear(&free_time);
	}
	busy_clear(&l);

	CHECK_INT(busy_from_freebusy(a, "someone@example.com", from, to, &l, &error), -1,
		  "a calendar the answer does not have is not free");
	cJSON_Delete(a);

	a = parse("{\"calendars\":{\"primary\":{\"errors\":[{\"domain\":\"global\",\"reason\":\"notFound\"}],"
		  "\"busy\":[]}}}");
	CHECK_INT(busy_from_freebusy(a, "primary", from, to, &l, &error), 0, "a per-calendar error reads");
	CHECK_STR(error, "notFound", "and is named, never taken for free time");
	cJSON_Delete(a);

	a = parse("{\"calendars\":{\"primary\":{\"errors\":[{}]}}}");
	busy_from_freebusy(a, "primary", from, to, &l, &error);
	CHECK_STR(error, "unknown", "an error without a reason still counts");
	cJSON_Delete(a);

	a = parse("{\"calendars\":{\"primary\":{\"busy\":[{\"start\":\"2026-12-08T13:00:00\","
		  "\"end\":\"2026-12-08T14:00:00Z\"}]}}}");
	CHECK_INT(busy_from_freebusy(a, "primary", from, to, &l, &error), -1, "a time without offset is refused");
	CHECK_INT((int)l.n, 0, "and leaves nothing behind");
	cJSON_Delete(a);

	a = parse("{\"calendars\":{\"primary\":{}}}");
	CHECK_INT(busy_from_freebusy(a, "primary", from, to, &l, &error), 0, "no busy member: free");
	CHECK_INT((int)l.n, 0, "with no spans");
	cJSON_Delete(a);
	a = parse("{\"calendars\":{\"primary\":{\"busy\":{}}}}");
	CHECK_INT(busy_from_freebusy(a, "primary", from, to, &l, &error), -1, "busy that is not a list is refused");
	cJSON_Delete(a);
}

/* Minute-by-minute truth over [0, MINUTES). */
#define MINUTES 600

static void paint(const struct busy_list *l, unsigned char *m)
{
	memset(m, 0, MINUTES);
	for (size_t i = 0; i < l->n; i++)
		for (int64_t t = l->spans[i].start_s; t < l->spans[i].end_s; t++)
			if (t >= 0 && t < MINUTES)
				m[t] = 1;
}

static bool normalised(const struct busy_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->spans[i].end_s <= l->spans[i].start_s)
			return false;
		if (i > 0 && l->spans[i].start_s <= l->spans[i - 1].end_s)
			return false;
	}
	return true;
}

static void test_against_a_model(void)
{
	unsigned seed = 99;
	int bad = 0;

	for (int round = 0; round < 3000; round++) {
		struct busy_list l = { 0 }, gaps = { 0 };
		unsigned char want[MINUTES], got[MINUTES];
		int n, cut_a, cut_b, min_len, run = 0;

		seed = seed * 1103515245u + 12345u;
		n = (int)(seed >> 16) % 12;
		for (int i = 0; i < n; i++) {
			int a, len;

			seed = seed * 1103515245u + 12345u;
			a = (int)((seed >> 8) % MINUTES);
			len = (int)((seed >> 20) % 90) - 5;	/* some empty or backwards */
			busy_add(&l, a, a + len);
		}
		paint(&l, want);
		busy_normalise(&l);
		paint(&l, got);
		if (!normalised(&l) || memcmp(want, got, MINUTES) != 0)
			bad++;

		seed = seed * 1103515245u + 12345u;
		cut_a = (int)((seed >> 8) % MINUTES);
		cut_b = cut_a + (int)((seed >> 20) % 120);
		for (int t = cut_a; t < cut_b && t < MINUTES; t++)
			want[t] = 0;
		busy_subtract(&l, cut_a, cut_b);
		paint(&l, got);
		if (!normalised(&l) || memcmp(want, got, MINUTES) != 0)
			bad++;
		if (busy_overlaps(&l, cut_a, cut_b) && cut_b > cut_a)
			bad++;

		min_len = 1 + (int)((seed >> 4) % 60);
		busy_free_gaps(&l, 0, MINUTES, min_len, &gaps);
		/* Every free run of at least min_len minutes is exactly one gap, in order. */
		{
			size_t g = 0;
			bool ok = normalised(&gaps) || gaps.n == 0;

			for (int t = 0; t <= MINUTES; t++) {
				if (t < MINUTES && !want[t]) {
					run++;
					continue;
				}
				if (run >= min_len) {
					ok = ok && g < gaps.n && gaps.spans[g].start_s == t - run && gaps.spans[g].end_s == t;
					g++;
				}
				run = 0;
			}
			if (!ok || g != gaps.n)
				bad++;
		}
		busy_clear(&gaps);
		busy_clear(&l);
	}
	CHECK_INT(bad, 0, "3000 random lists: merge, subtract, overlap and gaps agree with the model");
}

int main(void)
{
	test_reads_google_answers();
	test_against_a_model();
	tz_shutdown();
	return tap_done();
}
