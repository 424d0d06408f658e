/*
 * tz: IANA time zones ("Asia/Kolkata") from the system's zone files
 * (/usr/share/zoneinfo, or $TZDIR). Google wants a real zone name beside every time, and a
 * demo time written without an offset means wall-clock time in the user's
 * zone, so both directions are needed: local wall time -> offset, and
 * instant -> offset.
 */
#ifndef TZ_H
#define TZ_H

#include <stdbool.h>
#include <stdint.h>

/* True for a zone the system knows ("UTC" included). */
bool tz_valid(const char *zone);

/*
 * Offset (seconds east of UTC) in force in zone at that wall-clock time.
 * For a time skipped by a DST change the offset after the change is used;
 * for a repeated time, the first. 0, or -1 for an unknown zone.
 */
int tz_offset_at_local(const char *zone, int year, int month, int day, int hour, int minute, int second,
		       int *offset_s);

/* Offset in force in zone at the instant epoch_s. 0, or -1 for an unknown zone. */
int tz_offset_at_utc(const char *zone, int64_t epoch_s, int *offset_s);

/* Release the zones read so far (leak checkers at exit). */
void tz_shutdown(void);

#endif
