/*
 * metrics: an in-process Prometheus registry (see metrics.h).
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "xmalloc.h"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metric {
	struct metric *next;
	char *labels;		/* rendered: key="value",key2="value2" (may be empty) */
	double value;		/* counter/gauge value; histogram sum */
	unsigned long long count;	/* histogram observations */
	unsigned long long *bucket_counts;
	const struct metrics_family *family;
};

struct metrics_family {
	struct metrics_family *next;
	char *name;
	char *help;
	enum metrics_type type;
	double *buckets;
	size_t nbuckets;
	struct metric *series;
	struct metric **tail;
};

const double metrics_latency_buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
const size_t metrics_latency_nbuckets = sizeof(metrics_latency_buckets) / sizeof(*metrics_latency_buckets);

static struct metrics_family *metrics_families;
static struct metrics_family **metrics_tail = &metrics_families;
static double metrics_start_time;

struct metrics_buf {
	char *p;
	size_t len, cap;
};

static void metrics_put(struct metrics_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void metrics_put(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap ? b->cap * 2 : 4096;
		while (b->cap - b->len <= (size_t)n)
			b->cap *= 2;
		b->p = xrealloc(b->p, b->cap);
	}
}

/*
 * A label set being rendered: on the stack unless it outgrows it. The
 * lookups run on every request (a counter and a histogram per HTTP answer),
 * so they append bytes rather than calling the printf family per character.
 */
struct metrics_labels {
	char *p;
	size_t len, cap;
	char stack[256];
};

static void metrics_labels_append(struct metrics_labels *l, const char *s, size_t n)
{
	if (l->len + n + 1 > l->cap) {
		size_t cap = l->cap * 2;

		while (cap < l->len + n + 1)
			cap *= 2;
		if (l->p == l->stack) {
			l->p = xmalloc(cap);
			memcpy(l->p, l->stack, l->len);
		} else {
			l->p = xrealloc(l->p, cap);
		}
		l->cap = cap;
	}
	memcpy(l->p + l->len, s, n);
	l->len += n;
	l->p[l->len] = '\0';
}

/* key="value" pairs from a NULL-terminated vararg list, escaping values. Release with metrics_labels_done(). */
static void metrics_labels_render(struct metrics_labels *l, va_list ap)
{
	const char *key;

	l->p = l->stack;
	l->len = 0;
	l->cap = sizeof(l->stack);
	l->p[0] = '\0';
	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *val = va_arg(ap, const char *);
		const char *run = val ? val : "";

		if (l->len > 0)
			metrics_labels_append(l, ",", 1);
		metrics_labels_append(l, key, strlen(key));
		metrics_labels_append(l, "=\"", 2);
		for (const char *p = run;; p++) {
			const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;

			if (esc == NULL && *p != '\0')
				continue;
			metrics_labels_append(l, run, (size_t)(p - run));
			if (*p == '\0')
				break;
			metrics_labels_append(l, esc, 2);
			run = p + 1;
		}
		metrics_labels_append(l, "\"", 1);
	}
}

static void metrics_labels_done(struct metrics_labels *l)
{
	if (l->p != l->stack)
		free(l->p);
}

static struct metrics_family *metrics_family(const char *name, const char *help, enum metrics_type type,
					      const double *buckets, size_t nbuckets)
{
	struct metrics_family *f;

	for (f = metrics_families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	if (metrics_start_time == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		metrics_start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	}
	f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(name);
	f->help = xstrdup(help);
	f->type = type;
	if (nbuckets > 0) {
		f->buckets = xmemdup(buckets, nbuckets * sizeof(*buckets));
		f->nbuckets = nbuckets;
	}
	f->tail = &f->series;
	*metrics_tail = f;
	metrics_tail = &f->next;
	return f;
}

static struct metric *metrics_series(struct metrics_family *f, struct metrics_labels *labels)
{
	struct metric *m;

	for (m = f->series; m != NULL; m = m->next) {
		if (strcmp(m->labels, labels->p) == 0) {
			metrics_labels_done(labels);
			return m;
		}
	}
	m = xcalloc(1, sizeof(*m));
	m->labels = xstrdup(labels->p);
	metrics_labels_done(labels);
	m->family = f;
	if (f->type == METRICS_HISTOGRAM)
		m->bucket_counts = xcalloc(f->nbuckets, sizeof(*m->bucket_counts));
	*f->tail = m;
	f->tail = &m->next;
	return m;
}

struct metric *metrics_counter(const char *name, const char *help, ...)
{
	va_list ap;
	struct metrics_labels labels;

	va_start(ap, help);
	metrics_labels_render(&labels, ap);
	va_end(ap);
	return metrics_series(metrics_family(name, help, METRICS_COUNTER, NULL, 0), &labels);
}

struct metric *metrics_gauge(const char *name, const char *help, ...)
{
	va_list ap;
	struct metrics_labels labels;

	va_start(ap, help);
	metrics_labels_render(&labels, ap);
	va_end(ap);
	return metrics_series(metrics_family(name, help, METRICS_GAUGE, NULL, 0), &labels);
}

struct metric *metrics_histogram(const char *name, const char *help, const double *buckets, size_t nbuckets, ...)
{
	va_list ap;
	struct metrics_labels labels;

	va_start(ap, nbuckets);
	metrics_labels_render(&labels, ap);
	va_end(ap);
	return metrics_series(metrics_family(name, help, METRICS_HISTOGRAM, buckets, nbuckets), &labels);
}

void metric_inc(struct metric *m)
{
	m->value += 1;
}

void metric_add(struct metric *m, double v)
{
	m->value += v;
}

void metric_set(struct metric *m, double v)
{
	m->value = v;
}

void metric_observe(struct metric *m, double v)
{
	const struct metrics_family *f = m->family;

	m->value += v;
	m->count++;
	for (size_t i = 0; i < f->nbuckets; i++)
		if (v <= f->buckets[i])
			m->bucket_counts[i]++;
}

double metric_value(const struct metric *m)
{
	return m->family->type == METRICS_HISTOGRAM ? (double)m->count : m->value;
}

static void metrics_render_process(struct metrics_buf *b)
{
	long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
	unsigned long long rss_pages = 0, utime = 0, stime = 0;
	unsigned long long vsize_pages = 0;
	int fds = 0;
	FILE *f;
	DIR *d;

	if ((f = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(f, "%llu %llu", &vsize_pages, &rss_pages) != 2)
			rss_pages = 0;
		fclose(f);
	}
	if ((f = fopen("/proc/self/stat", "r")) != NULL) {
		char line[1024];

		if (fgets(line, sizeof(line), f) != NULL) {
			/* Fields after the parenthesised command name, which may hold spaces. */
			char *p = strrchr(line, ')');

			if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
						&utime, &stime) != 2)
				utime = stime = 0;
		}
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while (readdir(d) != NULL)
			fds++;
		closedir(d);
		fds -= 3;	/* ".", ".." and the directory itself */
	}
	metrics_put(b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		       "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
		    rss_pages * (unsigned long long)page);
	metrics_put(b, "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		       "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n",
		    vsize_pages * (unsigned long long)page);
	metrics_put(b, "# HELP process_cpu_seconds_total Total user and system CPU time in seconds.\n"
		       "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n",
		    (double)(utime + stime) / (double)ticks);
	metrics_put(b, "# HELP process_open_fds Number of open file descriptors.\n"
		       "# TYPE process_open_fds gauge\nprocess_open_fds %d\n", fds);
	metrics_put(b, "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
		       "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
		    metrics_start_time);
}

static void metrics_render_series(struct metrics_buf *b, const struct metrics_family *f, const struct metric *m)
{
	const char *sep = m->labels[0] ? "," : "";

	if (f->type != METRICS_HISTOGRAM) {
		if (m->labels[0])
			metrics_put(b, "%s{%s} %.15g\n", f->name, m->labels, m->value);
		else
			metrics_put(b, "%s %.15g\n", f->name, m->value);
		return;
	}
	for (size_t i = 0; i < f->nbuckets; i++)
		metrics_put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, m->labels, sep, f->buckets[i],
			    m->bucket_counts[i]);
	metrics_put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, m->labels, sep, m->count);
	if (m->labels[0]) {
		metrics_put(b, "%s_sum{%s} %.15g\n", f->name, m->labels, m->value);
		metrics_put(b, "%s_count{%s} %llu\n", f->name, m->labels, m->count);
	} else {
		metrics_put(b, "%s_sum %.15g\n", f->name, m->value);
		metrics_put(b, "%s_count %llu\n", f->name, m->count);
	}
}

char *metrics_render(void)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	struct metrics_buf b = { 0 };

	for (const struct metrics_family *f = metrics_families; f != NULL; f = f->next) {
		metrics_put(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
		for (const struct metric *m = f->series; m != NULL; m = m->next)
			metrics_render_series(&b, f, m);
	}
	metrics_render_process(&b);
	return b.p;
}

void metrics_shutdown(void)
{
	struct metrics_family *f, *fn;
	struct metric *m, *mn;

	for (f = metrics_families; f != NULL; f = fn) {
		fn = f->next;
		for (m = f->series; m != NULL; m = mn) {
			mn = m->next;
			free(m->labels);
			free(m->bucket_counts);
			free(m);
		}
		free(f->name);
		free(f->help);
		free(f->buckets);
		free(f);
	}
	metrics_families = NULL;
	metrics_tail = &metrics_families;
}
