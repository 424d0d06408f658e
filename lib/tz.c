/*
 * tz: zone offsets via libical (see tz.h).
 */
#include "tz.h"

#include <string.h>

#include <libical/ical.h>

static icaltimezone *tz_lookup(const char *zone)
{
	if (zone == NULL || *zone == '\0' || strlen(zone) > 64)
		return NULL;
	if (strcmp(zone, "UTC") == 0)
		return icaltimezone_get_utc_timezone();
	return icaltimezone_get_builtin_timezone(zone);
}

bool tz_valid(const char *zone)
{
	return tz_lookup(zone) != NULL;
}

int tz_offset_at_local(const char *zone, int year, int month, int day, int hour, int minute, int second,
		       int *offset_s)
{
	icaltimezone *z = tz_lookup(zone);
	struct icaltimetype t = icaltime_null_time();
	int is_daylight = 0;

	if (z == NULL)
		return -1;
	t.year = year;
	t.month = month;
	t.day = day;
	t.hour = hour;
	t.minute = minute;
	t.second = second;
	*offset_s = icaltimezone_get_utc_offset(z, &t, &is_daylight);
	return 0;
}

int tz_offset_at_utc(const char *zone, int64_t epoch_s, int *offset_s)
{
	icaltimezone *z = tz_lookup(zone);
	struct icaltimetype t;
	int is_daylight = 0;

	if (z == NULL)
		return -1;
	t = icaltime_from_timet_with_zone((time_t)epoch_s, 0, icaltimezone_get_utc_timezone());
	*offset_s = icaltimezone_get_utc_offset_of_utc_time(z, &t, &is_daylight);
	return 0;
}

void tz_shutdown(void)
{
	icaltimezone_free_builtin_timezones();
}
