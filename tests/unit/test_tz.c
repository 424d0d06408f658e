/*
 * Unit tests of lib/tz against glibc, an independent reader of the same zone
 * files: every zone of zone1970.tab at every one of its transitions and at
 * random instants from 1900 to 2100, in the system's files and in "slim"
 * ones compiled here with zic (which end their transitions early and leave
 * the rest to the file's POSIX rule), wall-clock times through DST gaps and
 * overlaps, and names that must not reach the file system.
 */
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"

#define ZONEINFO "/usr/share/zoneinfo"

/* glibc's offset in zone at t. */
static int glibc_offset(const char *zone, time_t t)
{
	struct tm tm;

	setenv("TZ", zone, 1);
	tzset();
	localtime_r(&t, &tm);
	return (int)tm.tm_gmtoff;
}

/* Names of zone1970.tab's zones into names (at most max); their count. */
static int zone_names(char names[][64], int max)
{
	FILE *f = fopen(ZONEINFO "/zone1970.tab", "r");
	char line[512];
	int n = 0;

	if (f == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		char *cc, *coord, *zone, *save;

		if (line[0] == '#')
			continue;
		cc = strtok_r(line, "\t\n", &save);
		coord = strtok_r(NULL, "\t\n", &save);
		zone = strtok_r(NULL, "\t\n", &save);
		if (cc != NULL && coord != NULL && zone != NULL && strlen(zone) < 64)
			snprintf(names[n++], 64, "%s", zone);
	}
	fclose(f);
	return n;
}

/* Every zone of names (n), read from the zone files in TZDIR (or the system's), against glibc. */
static void check_every_zone(char names[][64], int n, const char *files)
{
	int bad = 0, unknown = 0;
	long checks = 0;
	unsigned seed = 2026;

	for (int i = 0; i < n; i++) {
		const char *zone = names[i];
		int prev = 0;

		if (!tz_valid(zone)) {
			unknown++;
			continue;
		}
		/* Each hour-aligned step finds the transitions near it; both sides of each are compared. */
		for (long long t = -2208988800LL; t < 4102444800LL; t += 14 * 86400) {
			int ours, want;

			seed = seed * 1103515245u + 12345u;
			for (int k = 0; k < 2; k++) {
				long long at = k == 0 ? t : t + (long long)(seed % (14 * 86400));

				if (tz_offset_at_utc(zone, at, &ours) < 0)
					ours = -999999;
				want = glibc_offset(zone, (time_t)at);
				checks++;
				if (ours != want) {
					if (bad < 5)
						printf("# %s at %lld: ours %d, glibc %d\n", zone, at, ours, want);
					bad++;
				}
			}
			if (ours != prev && t > -2208988800LL) {
				/* A change in the past two weeks: find it to the second and compare both sides. */
				long long lo = t - 14 * 86400, hi = t + 1;
				int before;

				tz_offset_at_utc(zone, lo, &before);
				while (hi - lo > 1) {
					long long mid = lo + (hi - lo) / 2;
					int o;

					tz_offset_at_utc(zone, mid, &o);
					if (o == before)
						lo = mid;
					else
						hi = mid;
				}
				for (long long at = lo - 1; at <= hi + 1; at++) {
					tz_offset_at_utc(zone, at, &ours);
					checks++;
					if (ours != glibc_offset(zone, (time_t)at)) {
						if (bad < 5)
							printf("# %s near a change at %lld: ours %d, glibc %d\n", zone,
							       at, ours, glibc_offset(zone, (time_t)at));
						bad++;
					}
				}
			}
			tz_offset_at_utc(zone, t, &prev);
		}
	}
	unsetenv("TZ");
	tzset();
	CHECK_INT(unknown, 0, "every listed zone reads (%s)", files);
	CHECK_INT(bad, 0, "every offset agrees with glibc (%s, %ld instants)", files, checks);
}

static void test_every_zone_agrees_with_glibc(void)
{
	static char names[600][64];
	int n = zone_names(names, 600);
	char dir[] = "/tmp/test_tz.XXXXXX", cmd[256];

	CHECK(n > 300, "zone1970.tab lists the world's zones (%d)", n);
	check_every_zone(names, n, "system files");

	/* The same zones compiled slim; tz_shutdown() forgets the fat ones, and glibc reads TZDIR too. */
	CHECK(mkdtemp(dir) != NULL, "a directory for slim zone files");
	snprintf(cmd, sizeof(cmd), "zic -b slim -d %s " ZONEINFO "/tzdata.zi", dir);
	CHECK_INT(system(cmd), 0, "zic compiles tzdata.zi slim");
	tz_shutdown();
	setenv("TZDIR", dir, 1);
	check_every_zone(names, n, "slim files");
	unsetenv("TZDIR");
	tz_shutdown();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_INT(system(cmd), 0, "removes them");
}

static int local_offset(const char *zone, int y, int mo, int d, int h, int mi)
{
	int off = -999999;

	tz_offset_at_local(zone, y, mo, d, h, mi, 0, &off);
	return off;
}

static void test_wall_clock_times(void)
{
	CHECK_INT(local_offset("Asia/Kolkata", 2025, 9, 18, 17, 0), 19800, "Kolkata is +05:30");
	CHECK_INT(local_offset("America/New_York", 2027, 3, 14, 1, 59), -5 * 3600, "before the gap: EST");
	CHECK_INT(local_offset("America/New_York", 2027, 3, 14, 2, 30), -4 * 3600,
		  "in the gap (02:30 does not exist): the offset after the change");
	CHECK_INT(local_offset("America/New_York", 2027, 3, 14, 3, 0), -4 * 3600, "after the gap: EDT");
	CHECK_INT(local_offset("America/New_York", 2027, 11, 7, 1, 30), -4 * 3600,
		  "the repeated hour: the first (EDT)");
	CHECK_INT(local_offset("America/New_York", 2027, 11, 7, 2, 0), -5 * 3600, "after the overlap: EST");
	CHECK_INT(local_offset("America/New_York", 2045, 7, 1, 12, 0), -4 * 3600,
		  "2045, from the file's rule: EDT");
	CHECK_INT(local_offset("Australia/Sydney", 2046, 1, 10, 9, 0), 11 * 3600,
		  "southern summer spans the new year (rule)");
	CHECK_INT(local_offset("Australia/Sydney", 2046, 7, 10, 9, 0), 10 * 3600, "southern winter (rule)");
	CHECK_INT(local_offset("Europe/Berlin", 2026, 10, 25, 2, 30), 2 * 3600, "Berlin's repeated hour: CEST");
	CHECK_INT(local_offset("UTC", 2026, 10, 25, 2, 30), 0, "UTC");
	CHECK_INT(local_offset("Etc/UTC", 2026, 10, 25, 2, 30), 0, "Etc/UTC");

	/* Random wall times in many zones: the instant found reads back as the same wall time (or a gap's). */
	{
		static const char *zones[] = { "America/New_York", "Europe/London", "Australia/Lord_Howe",
					       "America/Santiago", "America/Nuuk", "Asia/Tehran", "Pacific/Chatham",
					       "Africa/Casablanca", "America/Sao_Paulo", "Europe/Dublin" };
		unsigned seed = 7;
		int bad = 0;

		for (int i = 0; i < 200000; i++) {
			const char *zone = zones[i % 10];
			long long local, at;
			int y, mo, d, h, mi, off, back;

			seed = seed * 1103515245u + 12345u;
			y = 1980 + (int)(seed % 120);
			seed = seed * 1103515245u + 12345u;
			mo = 1 + (int)(seed % 12);
			d = 1 + (int)((seed >> 8) % 28);
			h = (int)((seed >> 16) % 24);
			mi = (int)((seed >> 4) % 4) * 15;
			off = local_offset(zone, y, mo, d, h, mi);
			{
				struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
						 .tm_min = mi };

				local = (long long)timegm(&tm);
			}
			at = local - off;
			back = glibc_offset(zone, (time_t)at);
			if (back != off) {
				/* Only a time the clocks skip may read back otherwise: at its changed offset. */
				int before = glibc_offset(zone, (time_t)(local - 86400)),
				    after = glibc_offset(zone, (time_t)(local + 86400));
				bool gap = glibc_offset(zone, (time_t)(local - before)) != before &&
					   glibc_offset(zone, (time_t)(local - after)) != after;

				if (!gap || off != after) {
					if (bad < 5)
						printf("# %s %04d-%02d-%02d %02d:%02d: offset %d reads back %d\n", zone,
						       y, mo, d, h, mi, off, back);
					bad++;
				}
			}
		}
		unsetenv("TZ");
		tzset();
		CHECK_INT(bad, 0, "200000 wall times resolve to instants that read back as themselves");
	}
}

static void test_names(void)
{
	static const char *refused[] = {
		"", "Not/AZone", "../../etc/passwd", "/etc/localtime", "America", "America/", "zone1970.tab",
		"tzdata.zi", "America//New_York", "America/../UTC", "-rf", "Europe/Berlin\n",
		"right/UTC",	/* leap seconds: not a civil zone */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
		CHECK(!tz_valid(refused[i]), "refuses \"%s\"", refused[i]);
	CHECK(tz_valid("UTC") && tz_valid("Asia/Kolkata") && tz_valid("America/Argentina/Buenos_Aires") &&
		      tz_valid("Etc/GMT+5") && tz_valid("US/Eastern"),
	      "accepts zones, links and Etc/ names");
	{
		int off;

		CHECK_INT(tz_offset_at_utc("Nope/Nope", 0, &off), -1, "an unknown zone is an error");
		CHECK_INT(tz_offset_at_utc("Etc/GMT+5", 0, &off), 0, "Etc/GMT+5 reads");
		CHECK_INT(off, -5 * 3600, "... and is five hours west (POSIX's sign)");
	}
	/* TZDIR points elsewhere, as on a machine whose zone files live apart. */
	setenv("TZDIR", "/nonexistent", 1);
	CHECK(!tz_valid("Europe/Paris"), "a zone not read yet comes from TZDIR");
	CHECK(tz_valid("Asia/Kolkata"), "one already read stays");
	unsetenv("TZDIR");
}

int main(void)
{
	test_names();
	test_every_zone_agrees_with_glibc();
	test_wall_clock_times();
	tz_shutdown();
	return tap_done();
}
