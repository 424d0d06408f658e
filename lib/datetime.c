/*
 * datetime: a strict RFC 3339 / ISO 8601 parser and formatter (see datetime.h).
 *
 * Calendar arithmetic is done here with Howard Hinnant's days-from-civil
 * algorithm rather than timegm(), so results never depend on the process's
 * TZ or locale and years outside time_t's comfortable range stay exact.
 */
#include "datetime.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tz.h"

int64_t datetime_days_from_civil(int year, int month, int day)
{
	int64_t y = (int64_t)year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static void datetime_civil_from_days(int64_t z, int *year, int *month, int *day)
{
	int64_t era, doe, yoe, doy, mp, y;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = (int)(y + (*month <= 2));
}

static bool datetime_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int datetime_month_days(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && datetime_leap(y) ? 29 : days[m - 1];
}

/* Read exactly n digits at *p; advances *p. -1 if they are not all digits. */
static int datetime_digits(const char **p, const char *end, int n)
{
	int v = 0;

	if (end - *p < n)
		return -1;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

static int64_t datetime_epoch(const struct datetime *dt, int offset_s)
{
	int64_t days = datetime_days_from_civil(dt->year, dt->month, dt->day);

	return days * 86400 + dt->hour * 3600 + dt->minute * 60 + dt->second - offset_s;
}

int datetime_parse(const char *s, size_t len, struct datetime *out)
{
	const char *p = s, *end = s + len;
	struct datetime dt = { 0 };
	bool leap_second = false;

	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;

	if ((dt.year = datetime_digits(&p, end, 4)) < 0 || p >= end || *p++ != '-')
		return -1;
	if ((dt.month = datetime_digits(&p, end, 2)) < 1 || dt.month > 12 || p >= end || *p++ != '-')
		return -1;
	if ((dt.day = datetime_digits(&p, end, 2)) < 1 || dt.year < 1 ||
	    dt.day > datetime_month_days(dt.year, dt.month))
		return -1;
	if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if ((dt.hour = datetime_digits(&p, end, 2)) < 0 || dt.hour > 23 || p >= end || *p++ != ':')
		return -1;
	if ((dt.minute = datetime_digits(&p, end, 2)) < 0 || dt.minute > 59)
		return -1;
	if (p < end && *p == ':') {
		p++;
		if ((dt.second = datetime_digits(&p, end, 2)) < 0 || dt.second > 60)
			return -1;
		if (dt.second == 60) {
			leap_second = true;
			dt.second = 59;
		}
		if (p < end && (*p == '.' || *p == ',')) {
			int ndig = 0;

			p++;
			while (p < end && *p >= '0' && *p <= '9') {
				if (ndig < 9)
					dt.nanosecond = dt.nanosecond * 10 + (*p - '0');
				ndig++;
				p++;
			}
			if (ndig == 0 || ndig > 18)
				return -1;
			for (int i = ndig; i < 9; i++)
				dt.nanosecond *= 10;
		}
	}

	if (p < end && (*p == 'Z' || *p == 'z')) {
		p++;
		dt.has_offset = true;
	} else if (p < end && (*p == '+' || *p == '-')) {
		int sign = *p++ == '-' ? -1 : 1;
		int oh, om = 0;

		if ((oh = datetime_digits(&p, end, 2)) < 0 || oh > 23)
			return -1;
		if (p < end && *p == ':') {
			p++;
			if ((om = datetime_digits(&p, end, 2)) < 0)
				return -1;
		} else if (p < end) {
			if ((om = datetime_digits(&p, end, 2)) < 0)
				return -1;
		}
		if (om > 59)
			return -1;
		dt.has_offset = true;
		dt.offset_s = sign * (oh * 3600 + om * 60);
	}
	if (p != end)
		return -1;
	if (dt.has_offset)
		dt.epoch_s = datetime_epoch(&dt, dt.offset_s);
	/* A leap second exists only as the last second of a UTC day (local 23:59 without offset). */
	if (leap_second) {
		int64_t utc_min = dt.has_offset ? (dt.epoch_s % 86400 + 86400) % 86400 / 60
						: dt.hour * 60 + dt.minute;

		if (utc_min != 23 * 60 + 59)
			return -1;
	}
	*out = dt;
	return 0;
}

int datetime_resolve(struct datetime *dt, const char *zone)
{
	int off;

	if (dt->has_offset)
		return 0;
	if (tz_offset_at_local(zone, dt->year, dt->month, dt->day, dt->hour, dt->minute, dt->second, &off) < 0)
		return -1;
	dt->has_offset = true;
	dt->offset_s = off;
	dt->epoch_s = datetime_epoch(dt, off);
	return 0;
}

static void datetime_split(int64_t t, int *y, int *mo, int *d, int *h, int *mi, int *s)
{
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t rem = t - days * 86400;

	datetime_civil_from_days(days, y, mo, d);
	*h = (int)(rem / 3600);
	*mi = (int)(rem % 3600 / 60);
	*s = (int)(rem % 60);
}

void datetime_format(int64_t epoch_s, int offset_s, char *buf, size_t size)
{
	int y, mo, d, h, mi, s;
	int off;

	/*
	 * RFC 3339 offsets have no seconds, but a zone's local mean time before
	 * standard time does (Asia/Kolkata was +05:53:28). Writing the instant
	 * at the whole minute keeps the instant exact; dropping the seconds from
	 * the offset alone would move it. (Found by tests/fuzz/fuzz_datetime.)
	 */
	offset_s -= offset_s % 60;
	off = offset_s < 0 ? -offset_s : offset_s;
	datetime_split(epoch_s + offset_s, &y, &mo, &d, &h, &mi, &s);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, mo, d, h, mi, s,
		 offset_s < 0 ? '-' : '+', off / 3600, off % 3600 / 60);
}

void datetime_format_utc(int64_t epoch_s, int32_t millis, char *buf, size_t size)
{
	int y, mo, d, h, mi, s;

	datetime_split(epoch_s, &y, &mo, &d, &h, &mi, &s);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s, (int)millis);
}
