/*
 * fuzz_datetime: demo_book_datetime, the text a language model wrote.
 *
 * Input: a zone name, NUL, the date-time text. Invariants: an accepted
 * date-time has every field in range; once resolved in a zone, formatting
 * its instant at its offset and parsing that again gives the same instant
 * (what the scheduler sends Google is what it read).
 */
#include "fuzz.h"

#include "datetime.h"
#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_fields f;
	struct datetime dt, again;
	char text[64];

	fuzz_fields_split(data, size, &f, 2);
	if (datetime_parse(f.v[1], strlen(f.v[1]), &dt) == 0) {
		if (dt.month < 1 || dt.month > 12 || dt.day < 1 || dt.day > 31 || dt.hour > 23 || dt.minute > 59 ||
		    dt.second > 59 || dt.nanosecond < 0 || dt.nanosecond > 999999999 || dt.offset_s <= -86400 ||
		    dt.offset_s >= 86400)
			fuzz_fail("field out of range in '%s'", f.v[1]);
		if (datetime_resolve(&dt, *f.v[0] ? f.v[0] : "UTC") == 0) {
			datetime_format(dt.epoch_s, dt.offset_s, text, sizeof(text));
			if (datetime_parse(text, strlen(text), &again) < 0 || !again.has_offset ||
			    again.epoch_s != dt.epoch_s)
				fuzz_fail("'%s' formats as '%s', which does not read back", f.v[1], text);
		}
	}
	/* Also the whole input as one text, which is what arrives from the database. */
	datetime_parse((const char *)data, size, &dt);
	fuzz_fields_free(&f);
	return 0;
}
