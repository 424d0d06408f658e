/*
 * busy: a calendar's busy time, as Google's freeBusy reports it, and the
 * free time between.
 *
 * The scheduler asks before every booking whether the rep is busy at the
 * lead's time, and the calling agent asks which times the rep has
 * (docs/booking.md, "Conflicts"). Both come down to a sorted list of
 * half-open spans [start, end) in Unix seconds: read from freeBusy's answer,
 * made disjoint, clipped, reduced by the meeting's own old slot when a
 * meeting moves, and turned into the gaps of at least a given length.
 * Everything here is pure, so it is tested exactly (tests/unit/test_busy.c)
 * and fuzzed with Google's answers.
 */
#ifndef BUSY_H
#define BUSY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

struct busy_span {
	int64_t start_s, end_s;	/* [start, end) */
};

/* A growable list of spans. Zero-initialised is empty; busy_clear() frees it. */
struct busy_list {
	struct busy_span *spans;
	size_t n, cap;
};

void busy_clear(struct busy_list *l);
void busy_add(struct busy_list *l, int64_t start_s, int64_t end_s);

/* Sort, and merge spans that overlap or touch; empty spans go. */
void busy_normalise(struct busy_list *l);

/*
 * The busy time of calendar_id in a freeBusy answer, normalised and clipped
 * to [from_s, to_s), into out (which must be empty). When Google reported
 * errors for the calendar instead (it cannot say whether the rep is free),
 * *error is the first one's reason, pointing into answer, and out stays
 * empty. 0; -1 when the answer does not have freeBusy's shape or a span is
 * not a date-time, which the caller treats like an error from Google.
 */
int busy_from_freebusy(const cJSON *answer, const char *calendar_id, int64_t from_s, int64_t to_s,
		       struct busy_list *out, const char **error);

/* Take [start_s, end_s) out of the (normalised) list, splitting a span it falls inside. */
void busy_subtract(struct busy_list *l, int64_t start_s, int64_t end_s);

/* Does any span of the (normalised) list overlap [start_s, end_s)? */
bool busy_overlaps(const struct busy_list *l, int64_t start_s, int64_t end_s);

/*
 * The gaps of at least min_s inside [from_s, to_s) around the (normalised)
 * busy list, into out (which must be empty).
 */
void busy_free_gaps(const struct busy_list *busy, int64_t from_s, int64_t to_s, int64_t min_s,
		    struct busy_list *out);

/*
 * The list as a JSON array of {"start", "end"} in RFC 3339, each instant at
 * the offset zone has then (UTC for an unknown zone). The caller deletes it.
 */
cJSON *busy_to_json(const struct busy_list *l, const char *zone);

/*
 * The list for people and logs: "2026-12-08T10:00:00-05:00 to
 * 2026-12-08T11:00:00-05:00, ..." at zone's offsets, at most max_spans of
 * them and then "and N more". The caller frees it.
 */
char *busy_to_text(const struct busy_list *l, const char *zone, size_t max_spans);

#endif
