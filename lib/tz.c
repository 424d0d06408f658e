/*
 * tz: zone offsets from the system's compiled zone files (see tz.h).
 *
 * A zone file (RFC 8536, "TZif") lists a zone's transitions with the
 * offset in force after each, and ends with a POSIX TZ rule
 * ("EST5EDT,M3.2.0,M11.1.0") for every instant after its last transition;
 * Debian's files are "slim", so the rule is what answers for most future
 * dates. Reading them here is a few hundred lines that replace libical's
 * zone code, which brought ICU and libstdc++ (3.4 MiB of resident memory)
 * into every service, two of which need nothing else of it
 * (docs/benchmarks.md, "Memory").
 *
 * A zone is read once and kept until tz_shutdown(); the services look zones
 * up from their loop's thread only, so the cache has no lock.
 */
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#define TZ_NAME_MAX 64
/* Larger than any real zone file (the biggest is about 3 KiB slim, 10 KiB fat). */
#define TZ_FILE_MAX (256 * 1024)
#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"

/* A POSIX TZ rule's change date: Jn (1-365, no Feb 29), n (0-365), or Mm.w.d. */
struct tz_date {
	char kind;		/* 'J', 'n' or 'M' */
	int day, week, month;
	int time_s;		/* local time of the change, -167 h to 167 h (RFC 8536 §3.3.1) */
};

struct tz_rule {
	int std_off;		/* seconds east of UTC */
	int dst_off;
	bool has_dst;
	struct tz_date start, end;	/* into and out of daylight time */
};

struct tz_zone {
	struct tz_zone *next;
	char *name;
	size_t n;		/* transitions */
	int64_t *at;		/* instants of the transitions, ascending */
	int *off_after;		/* offset from at[i] on */
	int first_off;		/* before the first transition */
	bool has_rule;
	struct tz_rule rule;	/* after the last transition */
};

static struct tz_zone *tz_cache;

/* Big-endian integers of the file: a signed 32- or 64-bit field, and a 32-bit count. */
static int64_t tz_be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	if (bytes == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

static size_t tz_count(const unsigned char *p)
{
	return (size_t)(uint32_t)tz_be(p, 4);
}

/*
 * Days from 1970-01-01 to year-month-day (proleptic Gregorian). The same as
 * datetime_days_from_civil(), kept here because datetime resolves wall times
 * through this module and lib/ has no cycles.
 */
static int64_t tz_days(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static bool tz_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t tz_year_of(int64_t t)
{
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

	return yoe + era * 400 + (mp >= 10);
}

/* POSIX TZ rule parsing; each returns the text after what it read, or NULL. */

static const char *tz_parse_name(const char *p)
{
	const char *start;

	if (*p == '<') {
		p = strchr(p, '>');
		return p != NULL ? p + 1 : NULL;
	}
	start = p;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++;
	return p - start >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] into seconds; max_h bounds the hours. */
static const char *tz_parse_hms(const char *p, int max_h, int *out)
{
	int sign = 1, h = 0, m = 0, s = 0;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9' && h <= max_h)
		h = h * 10 + (*p++ - '0');
	if (h > max_h)
		return NULL;
	if (*p == ':') {
		if (p[1] < '0' || p[1] > '5' || p[2] < '0' || p[2] > '9')
			return NULL;
		m = (p[1] - '0') * 10 + (p[2] - '0');
		p += 3;
		if (*p == ':') {
			if (p[1] < '0' || p[1] > '5' || p[2] < '0' || p[2] > '9')
				return NULL;
			s = (p[1] - '0') * 10 + (p[2] - '0');
			p += 3;
		}
	}
	*out = sign * (h * 3600 + m * 60 + s);
	return p;
}

static const char *tz_parse_int(const char *p, int lo, int hi, int *out)
{
	int v = 0;

	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9' && v <= hi)
		v = v * 10 + (*p++ - '0');
	if (v < lo || v > hi)
		return NULL;
	*out = v;
	return p;
}

static const char *tz_parse_date(const char *p, struct tz_date *d)
{
	d->time_s = 2 * 3600;
	if (*p == 'M') {
		d->kind = 'M';
		if ((p = tz_parse_int(p + 1, 1, 12, &d->month)) == NULL || *p != '.' ||
		    (p = tz_parse_int(p + 1, 1, 5, &d->week)) == NULL || *p != '.' ||
		    (p = tz_parse_int(p + 1, 0, 6, &d->day)) == NULL)
			return NULL;
	} else if (*p == 'J') {
		d->kind = 'J';
		if ((p = tz_parse_int(p + 1, 1, 365, &d->day)) == NULL)
			return NULL;
	} else {
		d->kind = 'n';
		if ((p = tz_parse_int(p, 0, 365, &d->day)) == NULL)
			return NULL;
	}
	if (*p == '/')
		p = tz_parse_hms(p + 1, 167, &d->time_s);
	return p;
}

/* The footer's rule; POSIX offsets count west of UTC, ours east. */
static int tz_parse_rule(const char *p, struct tz_rule *r)
{
	int off;

	memset(r, 0, sizeof(*r));
	if ((p = tz_parse_name(p)) == NULL || (p = tz_parse_hms(p, 24, &off)) == NULL)
		return -1;
	r->std_off = -off;
	if (*p == '\0')
		return 0;
	if ((p = tz_parse_name(p)) == NULL)
		return -1;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*p != ',' && *p != '\0') {
		if ((p = tz_parse_hms(p, 24, &off)) == NULL)
			return -1;
		r->dst_off = -off;
	}
	/* Without dates POSIX leaves the rule to the implementation; zone files always give them. */
	if (*p != ',' || (p = tz_parse_date(p + 1, &r->start)) == NULL || *p != ',' ||
	    (p = tz_parse_date(p + 1, &r->end)) == NULL)
		return -1;
	return *p == '\0' ? 0 : -1;
}

/* The instant, in local time of the offset in force before it, at which d falls in year. */
static int64_t tz_date_local(const struct tz_date *d, int64_t year)
{
	int64_t day;

	if (d->kind == 'J')
		day = tz_days(year, 1, 1) + d->day - 1 + (tz_leap(year) && d->day >= 60);
	else if (d->kind == 'n')
		day = tz_days(year, 1, 1) + d->day;
	else {
		int64_t first = tz_days(year, d->month, 1);
		int wday = (int)(((first + 4) % 7 + 7) % 7);	/* 1970-01-01 was a Thursday */
		int mday = 1 + (d->day - wday + 7) % 7 + (d->week - 1) * 7;
		static const int len[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		int days_in = len[d->month - 1] + (d->month == 2 && tz_leap(year));

		while (mday > days_in)
			mday -= 7;
		day = first + mday - 1;
	}
	return day * 86400 + d->time_s;
}

static int tz_rule_offset(const struct tz_rule *r, int64_t t)
{
	int64_t year = tz_year_of(t + r->std_off), start, end;

	if (!r->has_dst)
		return r->std_off;
	/* Into daylight time happens in standard time, out of it in daylight time. */
	start = tz_date_local(&r->start, year) - r->std_off;
	end = tz_date_local(&r->end, year) - r->dst_off;
	if (start < end)
		return t >= start && t < end ? r->dst_off : r->std_off;
	/* The southern hemisphere: daylight time spans the new year. */
	return t >= end && t < start ? r->std_off : r->dst_off;
}

/* Whole file at path into a fresh buffer (*len bytes); NULL when it cannot be read. The caller frees it. */
static unsigned char *tz_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;

	if (f == NULL)
		return NULL;
	buf = xmalloc(TZ_FILE_MAX);
	*len = fread(buf, 1, TZ_FILE_MAX, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

/*
 * The zone in a TZif file's bytes, from its 64-bit (version 2+) part and footer.
 * NULL for anything else, files with leap seconds ("right/...") included.
 */
static struct tz_zone *tz_parse(const unsigned char *b, size_t len)
{
	size_t isut, isstd, leap, timecnt, typecnt, charcnt, v1, need;
	const unsigned char *h, *types, *idx, *foot, *nl;
	struct tz_zone *z;

	if (len < 44 || memcmp(b, "TZif", 4) != 0 || b[4] < '2')
		return NULL;
	v1 = tz_count(b + 32) * 5 + tz_count(b + 36) * 6 + tz_count(b + 40) + tz_count(b + 28) * 8 +
	     tz_count(b + 24) + tz_count(b + 20);
	if (44 + v1 + 44 > len)
		return NULL;
	h = b + 44 + v1;
	if (memcmp(h, "TZif", 4) != 0)
		return NULL;
	isut = tz_count(h + 20);
	isstd = tz_count(h + 24);
	leap = tz_count(h + 28);
	timecnt = tz_count(h + 32);
	typecnt = tz_count(h + 36);
	charcnt = tz_count(h + 40);
	if (leap != 0 || typecnt == 0 || typecnt > 256 || timecnt > TZ_FILE_MAX || charcnt > TZ_FILE_MAX ||
	    isut > typecnt || isstd > typecnt)
		return NULL;
	need = timecnt * 9 + typecnt * 6 + charcnt + isstd + isut;
	if ((size_t)(h + 44 - b) + need + 2 > len)
		return NULL;
	idx = h + 44 + timecnt * 8;
	types = idx + timecnt;
	foot = types + typecnt * 6 + charcnt + isstd + isut;
	if (*foot != '\n' || (nl = memchr(foot + 1, '\n', len - (size_t)(foot + 1 - b))) == NULL)
		return NULL;

	z = xcalloc(1, sizeof(*z));
	z->n = timecnt;
	z->at = xcalloc(timecnt + 1, sizeof(*z->at));
	z->off_after = xcalloc(timecnt + 1, sizeof(*z->off_after));
	z->first_off = (int)tz_be(types, 4);
	for (size_t i = 0; i < timecnt; i++) {
		z->at[i] = tz_be(h + 44 + i * 8, 8);
		if (idx[i] >= typecnt || (i > 0 && z->at[i] <= z->at[i - 1]))
			goto bad;
		z->off_after[i] = (int)tz_be(types + idx[i] * 6, 4);
	}
	if (nl > foot + 1) {
		char *rule = xasprintf("%.*s", (int)(nl - foot - 1), (const char *)foot + 1);
		int rc = tz_parse_rule(rule, &z->rule);

		free(rule);
		if (rc < 0)
			goto bad;
		z->has_rule = true;
	}
	return z;
bad:
	free(z->at);
	free(z->off_after);
	free(z);
	return NULL;
}

/* A name that can only mean a file under the zone directory. */
static bool tz_name_ok(const char *zone)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-";
	size_t len = strlen(zone);

	return len > 0 && len <= TZ_NAME_MAX && zone[strspn(zone, allowed)] == '\0' && zone[0] != '/' &&
	       strstr(zone, "//") == NULL && zone[len - 1] != '/' && zone[0] != '-' && strstr(zone, "/-") == NULL;
}

static struct tz_zone *tz_lookup(const char *zone)
{
	static const struct tz_zone utc = { .name = "UTC" };
	const char *dir = getenv("TZDIR");
	unsigned char *bytes;
	struct tz_zone *z;
	char *path;
	size_t len;

	if (zone == NULL || !tz_name_ok(zone))
		return NULL;
	if (strcmp(zone, "UTC") == 0)
		return (struct tz_zone *)&utc;
	for (z = tz_cache; z != NULL; z = z->next)
		if (strcmp(z->name, zone) == 0)
			return z;
	path = xasprintf("%s/%s", dir != NULL && *dir != '\0' ? dir : TZ_DEFAULT_DIR, zone);
	bytes = tz_read_file(path, &len);
	z = bytes != NULL ? tz_parse(bytes, len) : NULL;
	if (bytes != NULL && z == NULL)
		log_warn("not a usable zone file", LOG_STR("path", path));
	free(bytes);
	free(path);
	if (z == NULL)
		return NULL;
	z->name = xstrdup(zone);
	z->next = tz_cache;
	tz_cache = z;
	return z;
}

static int tz_zone_offset(const struct tz_zone *z, int64_t t)
{
	size_t lo = 0, hi = z->n;

	if (z->n == 0 || t < z->at[0])
		return z->n == 0 && z->has_rule ? tz_rule_offset(&z->rule, t) : z->first_off;
	if (t >= z->at[z->n - 1] && z->has_rule)
		return tz_rule_offset(&z->rule, t);
	/* The last transition at or before t. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->off_after[lo];
}

bool tz_valid(const char *zone)
{
	return tz_lookup(zone) != NULL;
}

int tz_offset_at_local(const char *zone, int year, int month, int day, int hour, int minute, int second,
		       int *offset_s)
{
	const struct tz_zone *z = tz_lookup(zone);
	int64_t local;
	int before, after;

	if (z == NULL)
		return -1;
	local = tz_days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
	/* The offsets a day either side: no zone changes twice within two days. */
	before = tz_zone_offset(z, local - 86400);
	after = tz_zone_offset(z, local + 86400);
	if (tz_zone_offset(z, local - before) == before)
		*offset_s = before;	/* also the first of a repeated hour */
	else
		*offset_s = after;	/* a valid time after the change, or one the change skipped */
	return 0;
}

int tz_offset_at_utc(const char *zone, int64_t epoch_s, int *offset_s)
{
	const struct tz_zone *z = tz_lookup(zone);

	if (z == NULL)
		return -1;
	*offset_s = tz_zone_offset(z, epoch_s);
	return 0;
}

void tz_shutdown(void)
{
	while (tz_cache != NULL) {
		struct tz_zone *z = tz_cache;

		tz_cache = z->next;
		free(z->name);
		free(z->at);
		free(z->off_after);
		free(z);
	}
}
