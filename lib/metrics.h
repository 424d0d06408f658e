/*
 * metrics: Prometheus counters, gauges and histograms for /metrics.
 *
 * A process-wide registry (each process has one event loop and one thread
 * that touches metrics). A series is found or created by family name plus
 * label pairs, given as NULL-terminated "key", "value" arguments; label
 * values are escaped here. Hot paths keep the returned pointer; series live
 * until metrics_shutdown(). Rendering adds the standard process_* series
 * (resident memory, CPU seconds, start time, open descriptors).
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>

struct metric;

/* Default latency buckets in seconds, from 1 ms to 10 s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_nbuckets;

struct metric *metrics_counter(const char *name, const char *help, ...) __attribute__((sentinel));
struct metric *metrics_gauge(const char *name, const char *help, ...) __attribute__((sentinel));
/* buckets: ascending upper bounds (+Inf is implied); copied on first use of the family. */
struct metric *metrics_histogram(const char *name, const char *help, const double *buckets, size_t nbuckets, ...)
	__attribute__((sentinel));

void metric_inc(struct metric *m);
void metric_add(struct metric *m, double v);
void metric_set(struct metric *m, double v);
void metric_observe(struct metric *m, double v);
double metric_value(const struct metric *m);

/* The text exposition format (version 0.0.4). The caller frees it. */
char *metrics_render(void);

/* Free every series. */
void metrics_shutdown(void);

#endif
