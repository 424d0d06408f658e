/*
 * Unit tests of lib/datetime: every accepted form, every refused form, the
 * calendar arithmetic against the C library over three centuries, zone
 * resolution across DST changes, and format/parse round trips.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datetime.h"
#include "tap.h"
#include "tz.h"

struct valid_case {
	const char *in;
	long long epoch;
	int offset_s;
	int nanos;
};

static const struct valid_case valid[] = {
	/* The example of docs/booking.md, "The demo time", and its siblings. */
	{ "2025-09-18T17:00:00+05:30", 1758195000, 19800, 0 },
	{ "2025-09-18T11:30:00Z", 1758195000, 0, 0 },
	{ "2025-09-18T11:30:00z", 1758195000, 0, 0 },
	{ "2025-09-18t11:30:00Z", 1758195000, 0, 0 },
	{ "2025-09-18 17:00:00+05:30", 1758195000, 19800, 0 },
	{ "2025-09-18T17:00+05:30", 1758195000, 19800, 0 },
	{ "2025-09-18T17:00:00+0530", 1758195000, 19800, 0 },
	{ "2025-09-18T16:30:00+05", 1758195000, 18000, 0 },
	{ "2025-09-18T07:30:00-04:00", 1758195000, -14400, 0 },
	{ "2025-09-18T11:30:00+00:00", 1758195000, 0, 0 },
	{ "2025-09-18T11:30:00-00:00", 1758195000, 0, 0 },
	{ "  2025-09-18T11:30:00Z\n", 1758195000, 0, 0 },
	/* Fractions: any precision, comma or dot, beyond nanoseconds truncated. */
	{ "2025-09-18T11:30:00.5Z", 1758195000, 0, 500000000 },
	{ "2025-09-18T11:30:00.123Z", 1758195000, 0, 123000000 },
	{ "2025-09-18T11:30:00,123Z", 1758195000, 0, 123000000 },
	{ "2025-09-18T11:30:00.123456789Z", 1758195000, 0, 123456789 },
	{ "2025-09-18T11:30:00.1234567891234Z", 1758195000, 0, 123456789 },
	{ "2025-09-18T17:00:00.000+05:30", 1758195000, 19800, 0 },
	/* Extremes of offsets and of the calendar. */
	{ "2025-01-01T00:00:00+14:00", 1735639200, 50400, 0 },
	{ "2025-01-01T00:00:00-12:00", 1735732800, -43200, 0 },
	{ "2025-01-01T00:00:00+23:59", 1735603260, 86340, 0 },
	{ "1970-01-01T00:00:00Z", 0, 0, 0 },
	{ "1969-12-31T23:59:59Z", -1, 0, 0 },
	{ "2000-02-29T12:00:00Z", 951825600, 0, 0 },
	{ "2024-02-29T23:59:59Z", 1709251199, 0, 0 },
	{ "2038-01-19T03:14:08Z", 2147483648LL, 0, 0 },
	{ "9999-12-31T23:59:59Z", 253402300799LL, 0, 0 },
	{ "0001-01-01T00:00:00Z", -62135596800LL, 0, 0 },
	/* Leap seconds: only the last second of a UTC day, read as :59. */
	{ "2016-12-31T23:59:60Z", 1483228799, 0, 0 },
	{ "1990-12-31T15:59:60-08:00", 662687999, -28800, 0 },
};

static const char *const invalid[] = {
	"", " ", "null", "tomorrow at 5pm", "2025-09-18", "2025-09-18T", "2025-09-18T17",
	"2025-09-18T17:", "2025-09-18T17:0", "2025-09-18T17:00:", "2025-09-18T17:00:0",
	"2025-9-18T17:00:00Z", "25-09-18T17:00:00Z", "2025/09/18T17:00:00Z", "20250918T170000Z",
	"2025-09-18X17:00:00Z", "2025-09-18T17:00:00.Z", "2025-09-18T17:00:00.", "2025-09-18T17:00:00Zjunk",
	"2025-09-18T17:00:00+5:30", "2025-09-18T17:00:00+05:3", "2025-09-18T17:00:00+05:60",
	"2025-09-18T17:00:00+24:00", "2025-09-18T17:00:00+", "2025-09-18T17:00:00 +05:30",
	"2025-09-18T17:00:00+05:30:00", "2025-09-18T17:00:00UTC", "2025-09-18T17:00:00 Z",
	"2025-00-18T17:00:00Z", "2025-13-18T17:00:00Z", "2025-09-00T17:00:00Z", "2025-09-31T17:00:00Z",
	"2025-02-29T17:00:00Z", "1900-02-29T17:00:00Z", "2100-02-29T10:00:00Z", "2025-04-31T10:00:00Z",
	"2025-09-18T24:00:00Z", "2025-09-18T23:60:00Z", "2025-09-18T23:59:61Z", "2025-09-18T12:59:60Z",
	"2016-12-31T23:59:60+01:00", "0000-01-01T00:00:00Z", "-2025-09-18T17:00:00Z", "+2025-09-18T17:00:00Z",
	"2025-09-18T17:00:00\xc2\xa0Z", "2025-09-18T17:00:00.12345678901234567890Z", "2025-09-18TT17:00:00Z",
	"２０２５-09-18T17:00:00Z",
};

static void test_valid(void)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(*valid); i++) {
		struct datetime dt;
		int rc = datetime_parse(valid[i].in, strlen(valid[i].in), &dt);

		CHECK_INT(rc, 0, "accepts '%s'", valid[i].in);
		if (rc != 0)
			continue;
		CHECK(dt.has_offset, "'%s' has an offset", valid[i].in);
		CHECK_INT(dt.epoch_s, valid[i].epoch, "'%s' is the right instant", valid[i].in);
		CHECK_INT(dt.offset_s, valid[i].offset_s, "'%s' keeps its offset", valid[i].in);
		CHECK_INT(dt.nanosecond, valid[i].nanos, "'%s' keeps its fraction", valid[i].in);
	}
}

static void test_invalid(void)
{
	for (size_t i = 0; i < sizeof(invalid) / sizeof(*invalid); i++) {
		struct datetime dt;

		CHECK_INT(datetime_parse(invalid[i], strlen(invalid[i]), &dt), -1, "refuses '%s'", invalid[i]);
	}
	{
		static const char nul[] = "2025-09-18T17:00:00\0Z";
		struct datetime dt;

		CHECK_INT(datetime_parse(nul, sizeof(nul) - 1, &dt), -1, "refuses an embedded NUL");
	}
}

static void test_no_offset(void)
{
	struct datetime dt;
	const char *s = "2025-09-18T17:00:00";

	CHECK_INT(datetime_parse(s, strlen(s), &dt), 0, "accepts a time without offset");
	CHECK(!dt.has_offset, "and says it has none");
	CHECK_INT(dt.hour, 17, "keeps the wall-clock hour");
	CHECK_INT(datetime_resolve(&dt, "Asia/Kolkata"), 0, "resolves in Asia/Kolkata");
	CHECK_INT(dt.offset_s, 19800, "Kolkata is +05:30");
	CHECK_INT(dt.epoch_s, 1758195000, "to the same instant as the offset form");

	/* New York: standard time, daylight time, and the two DST transitions of 2026. */
	s = "2026-01-15T09:00:00";
	datetime_parse(s, strlen(s), &dt);
	datetime_resolve(&dt, "America/New_York");
	CHECK_INT(dt.offset_s, -5 * 3600, "New York in January is -05:00");
	s = "2026-07-15T09:00:00";
	datetime_parse(s, strlen(s), &dt);
	datetime_resolve(&dt, "America/New_York");
	CHECK_INT(dt.offset_s, -4 * 3600, "New York in July is -04:00");
	CHECK_INT(dt.epoch_s, 1784120400, "July 09:00 New York is 13:00Z");
	s = "2026-11-01T00:30:00";
	datetime_parse(s, strlen(s), &dt);
	datetime_resolve(&dt, "America/New_York");
	CHECK_INT(dt.offset_s, -4 * 3600, "before the November change it is still -04:00");
	s = "2026-11-01T03:30:00";
	datetime_parse(s, strlen(s), &dt);
	datetime_resolve(&dt, "America/New_York");
	CHECK_INT(dt.offset_s, -5 * 3600, "after the November change it is -05:00");

	s = "2025-09-18T17:00:00";
	datetime_parse(s, strlen(s), &dt);
	CHECK_INT(datetime_resolve(&dt, "Not/AZone"), -1, "an unknown zone is refused");
	CHECK(!dt.has_offset, "and leaves the value unresolved");

	s = "2025-09-18T17:00:00+02:00";
	datetime_parse(s, strlen(s), &dt);
	CHECK_INT(datetime_resolve(&dt, "Asia/Kolkata"), 0, "resolving a value with offset succeeds");
	CHECK_INT(dt.offset_s, 7200, "and keeps its own offset");
}

/* Every day from 1900 to 2100 against timegm(), which is exact in that range. */
static void test_calendar_exhaustive(void)
{
	int bad = 0, days = 0;

	for (int y = 1900; y <= 2100; y++) {
		for (int m = 1; m <= 12; m++) {
			for (int d = 1; d <= 31; d++) {
				struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
				char buf[64];
				struct datetime dt;
				time_t want;

				snprintf(buf, sizeof(buf), "%04d-%02d-%02dT12:34:56Z", y, m, d);
				want = timegm(&tm) + 12 * 3600 + 34 * 60 + 56;
				if (tm.tm_mday != d) {	/* timegm normalised: the day does not exist */
					if (datetime_parse(buf, strlen(buf), &dt) != -1)
						bad++;
					continue;
				}
				days++;
				if (datetime_parse(buf, strlen(buf), &dt) != 0 || dt.epoch_s != (long long)want)
					bad++;
			}
		}
	}
	CHECK_INT(days, 73414, "visited every real day of 1900-2100");
	CHECK_INT(bad, 0, "every date agrees with timegm and every impossible date is refused");
}

static void test_format_roundtrip(void)
{
	static const int offsets[] = { 0, 19800, -14400, 50400, -43200, 20700, -34200 };
	unsigned seed = 12345;
	int bad = 0;
	char buf[40];

	datetime_format(1758195000, 19800, buf, sizeof(buf));
	CHECK_STR(buf, "2025-09-18T17:00:00+05:30", "formats with the offset");
	datetime_format(1758195000, 0, buf, sizeof(buf));
	CHECK_STR(buf, "2025-09-18T11:30:00+00:00", "formats UTC as +00:00");
	datetime_format(-1, -3600, buf, sizeof(buf));
	CHECK_STR(buf, "1969-12-31T22:59:59-01:00", "formats before the epoch");
	/* Asia/Kolkata's local mean time, +05:53:28: the instant stays exact at +05:53. */
	datetime_format(0, 21208, buf, sizeof(buf));
	CHECK_STR(buf, "1970-01-01T05:53:00+05:53", "an offset with seconds is written at its minute, same instant");
	datetime_format(0, -21208, buf, sizeof(buf));
	CHECK_STR(buf, "1969-12-31T18:07:00-05:53", "... also west of UTC");
	datetime_format_utc(1758195000, 7, buf, sizeof(buf));
	CHECK_STR(buf, "2025-09-18T11:30:00.007Z", "formats UTC with milliseconds");

	for (int i = 0; i < 100000; i++) {
		long long t;
		int off = offsets[i % 7];
		struct datetime dt;

		seed = seed * 1103515245u + 12345u;
		t = (long long)(seed % 4000000000u) - 1000000000LL;
		datetime_format(t, off, buf, sizeof(buf));
		if (datetime_parse(buf, strlen(buf), &dt) != 0 || dt.epoch_s != t || dt.offset_s != off)
			bad++;
	}
	CHECK_INT(bad, 0, "100000 random instants survive format then parse");
}

int main(void)
{
	test_valid();
	test_invalid();
	test_no_offset();
	test_calendar_exhaustive();
	test_format_roundtrip();
	tz_shutdown();
	return tap_done();
}
