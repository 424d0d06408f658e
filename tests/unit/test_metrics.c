/*
 * Unit tests of lib/metrics: the exposition text Prometheus parses.
 */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"
#include "xmalloc.h"

int main(void)
{
	struct metric *a = metrics_counter("requests_total", "Requests.", "route", "/a", "status", "200", NULL);
	struct metric *b = metrics_counter("requests_total", "Requests.", "route", "/b\"x", "status", "404", NULL);
	struct metric *a2 = metrics_counter("requests_total", "Requests.", "route", "/a", "status", "200", NULL);
	struct metric *g = metrics_gauge("in_flight", "In flight.", NULL);
	static const double buckets[] = { 0.1, 1 };
	struct metric *h = metrics_histogram("latency_seconds", "Latency.", buckets, 2, "op", "insert", NULL);
	char *text;

	CHECK(a == a2, "the same name and labels give the same series");
	metric_inc(a);
	metric_inc(a);
	metric_inc(b);
	metric_set(g, 3);
	metric_observe(h, 0.05);
	metric_observe(h, 0.5);
	metric_observe(h, 5);
	CHECK(metric_value(a) == 2, "counter counts");
	CHECK(metric_value(h) == 3, "histogram counts observations");

	text = metrics_render();
	CHECK(strstr(text, "# TYPE requests_total counter\n") != NULL, "counter family typed once");
	CHECK(strstr(text, "requests_total{route=\"/a\",status=\"200\"} 2\n") != NULL, "labelled counter");
	CHECK(strstr(text, "requests_total{route=\"/b\\\"x\",status=\"404\"} 1\n") != NULL, "label values escaped");
	CHECK(strstr(text, "in_flight 3\n") != NULL, "unlabelled gauge");
	CHECK(strstr(text, "latency_seconds_bucket{op=\"insert\",le=\"0.1\"} 1\n") != NULL, "first bucket");
	CHECK(strstr(text, "latency_seconds_bucket{op=\"insert\",le=\"1\"} 2\n") != NULL, "buckets cumulative");
	CHECK(strstr(text, "latency_seconds_bucket{op=\"insert\",le=\"+Inf\"} 3\n") != NULL, "+Inf bucket");
	CHECK(strstr(text, "latency_seconds_sum{op=\"insert\"} 5.55") != NULL, "sum");
	CHECK(strstr(text, "latency_seconds_count{op=\"insert\"} 3\n") != NULL, "count");
	CHECK(strstr(text, "process_resident_memory_bytes ") != NULL, "process memory");
	CHECK(strstr(text, "process_cpu_seconds_total ") != NULL, "process CPU");
	{
		/* Backslash and newline escaped too; a label set longer than the renderer's stack buffer. */
		char long_value[600], *want;
		struct metric *e = metrics_counter("odd_total", "Odd labels.", "path", "a\\b\nc", NULL);
		struct metric *l, *l2;

		memset(long_value, 'v', sizeof(long_value) - 1);
		long_value[sizeof(long_value) - 1] = '\0';
		l = metrics_counter("odd_total", "Odd labels.", "path", long_value, "n", "1", NULL);
		l2 = metrics_counter("odd_total", "Odd labels.", "path", long_value, "n", "1", NULL);
		metric_inc(e);
		metric_add(l, 2);
		CHECK(l == l2 && l != e, "a long label set is found again");
		free(text);
		text = metrics_render();
		CHECK(strstr(text, "odd_total{path=\"a\\\\b\\nc\"} 1\n") != NULL, "backslash and newline escaped");
		want = xasprintf("odd_total{path=\"%s\",n=\"1\"} 2\n", long_value);
		CHECK(strstr(text, want) != NULL, "the long label set rendered whole");
		free(want);
	}
	{
		const char *first = strstr(text, "# HELP requests_total");

		CHECK(first && strstr(first + 1, "# HELP requests_total") == NULL, "one HELP per family");
	}
	free(text);
	metrics_shutdown();
	return tap_done();
}
