/*
 * datetime: RFC 3339 / ISO 8601 date-times as the AI extraction writes them.
 *
 * demo_book_datetime is free text from a language model ("2025-09-18T17:00:00+05:30",
 * "2025-09-18 17:00", "2025-09-18T11:30:00.000Z"), so the parser accepts the
 * extended ISO 8601 forms people and programs actually write and refuses
 * everything else with -1 rather than guessing: a wrong guess books a real
 * meeting at the wrong time.
 *
 * Accepted: YYYY-MM-DD, then 'T', 't' or one space, then hh:mm[:ss[.fraction]]
 * (fraction of 1 to 9 digits, ',' or '.'), then optionally 'Z'/'z' or an
 * offset +hh:mm, +hhmm or +hh (also '-'). Surrounding white space is ignored.
 * Fields are range-checked (days per month and leap years, 00-23 hours,
 * second 60 only as a leap second at 23:59:60). A date alone is refused:
 * a meeting needs a time.
 */
#ifndef DATETIME_H
#define DATETIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct datetime {
	int year, month, day;		/* as written */
	int hour, minute, second;	/* as written (a leap second reads as 59) */
	int32_t nanosecond;
	bool has_offset;		/* false: wall-clock time in some zone, see datetime_resolve() */
	int offset_s;			/* seconds east of UTC; 0 for 'Z' */
	int64_t epoch_s;		/* the instant; valid only when has_offset */
};

/* Parse s[0..len). 0, or -1 when it is not a date-time this module accepts. */
int datetime_parse(const char *s, size_t len, struct datetime *out);

/*
 * Give a date-time without offset the offset of zone at that wall-clock time
 * and compute its instant. A date-time that has an offset is left as is.
 * 0, or -1 for an unknown zone.
 */
int datetime_resolve(struct datetime *dt, const char *zone);

/* Days since 1970-01-01 of a proleptic Gregorian date (negative before). */
int64_t datetime_days_from_civil(int year, int month, int day);

/*
 * Write the instant epoch_s as seen at offset_s, in RFC 3339 with a numeric
 * offset ("2025-09-18T17:00:00+05:30"; "+00:00" for UTC). An offset with
 * seconds (local mean time, before 1900) is written at its whole minute, the
 * instant unchanged. buf needs 26 bytes.
 */
void datetime_format(int64_t epoch_s, int offset_s, char *buf, size_t size);

/* The same instant in UTC with a 'Z' and milliseconds: "2025-09-18T11:30:00.000Z". */
void datetime_format_utc(int64_t epoch_s, int32_t millis, char *buf, size_t size);

#endif
