/*
 * faults: injected latency and failures, so tests can exercise a client's
 * timeouts, retries and backoff against the answers Google really gives.
 *
 * Rules fire first, in order, each as many times as its count says; only a
 * request no rule took can fail at random (fail_fraction). Randomness comes
 * from a seeded generator, so a failing run can be replayed with the same
 * seed. Only token, revoke, tokeninfo, userinfo and Calendar requests get
 * here; the browser pages and /_standin/ are never faulted.
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "log.h"
#include "xmalloc.h"

struct fault_rule {
	char method[16]; /* "" matches any */
	char *path_prefix;
	int status; /* 0: delay only */
	long count;
	long latency_ms;
	char reason[64];
};

struct faults {
	long latency_ms;
	long jitter_ms;
	long spike_every;
	long spike_ms;
	double fail_fraction;
	int *fail_statuses;
	size_t nfail;
	char *fail_path_prefix;
	struct fault_rule *rules;
	size_t nrules;
	uint64_t seed;
	uint64_t rng;
	unsigned long long seen;
};

static struct faults faults;

/* splitmix64: tiny, fast, and reproducible from a seed. */
static uint64_t faults_next(void)
{
	uint64_t z = (faults.rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void faults_release(struct faults *f)
{
	for (size_t i = 0; i < f->nrules; i++)
		free(f->rules[i].path_prefix);
	free(f->rules);
	free(f->fail_statuses);
	free(f->fail_path_prefix);
	memset(f, 0, sizeof(*f));
}

static void faults_seed(struct faults *f, uint64_t seed)
{
	f->seed = seed;
	f->rng = seed;
}

void faults_free(void)
{
	faults_release(&faults);
}

/* Also the start state: no faults, and a fresh seed (53 bits, so JSON shows it exactly). */
void faults_clear(void)
{
	uint64_t seed;

	faults_release(&faults);
	randombytes_buf(&seed, sizeof(seed));
	faults_seed(&faults, seed >> 11);
}

static int faults_ms(const cJSON *v, long *out, const char **err, const char *what)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 600000) {
		*err = what;
		return -1;
	}
	*out = (long)v->valuedouble;
	return 0;
}

static int faults_status(const cJSON *v, int *out, const char **err)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 400 || v->valuedouble > 599 ||
	    v->valuedouble != (int)v->valuedouble) {
		*err = "fault statuses must be integers from 400 to 599";
		return -1;
	}
	*out = (int)v->valuedouble;
	return 0;
}

static int faults_parse_rule(const cJSON *obj, struct fault_rule *r, const char **err)
{
	const cJSON *v;

	memset(r, 0, sizeof(*r));
	r->count = 1;
	if (!cJSON_IsObject(obj)) {
		*err = "rules must be objects";
		return -1;
	}
	cJSON_ArrayForEach(v, obj) {
		const char *k = v->string;

		if (strcmp(k, "method") == 0) {
			if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(r->method)) {
				*err = "rule method must be an HTTP method";
				return -1;
			}
			strcpy(r->method, v->valuestring);
		} else if (strcmp(k, "path_prefix") == 0) {
			if (!cJSON_IsString(v)) {
				*err = "rule path_prefix must be a string";
				return -1;
			}
			free(r->path_prefix);
			r->path_prefix = xstrdup(v->valuestring);
		} else if (strcmp(k, "status") == 0) {
			if (faults_status(v, &r->status, err) < 0)
				return -1;
		} else if (strcmp(k, "count") == 0) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 1) {
				*err = "rule count must be at least 1";
				return -1;
			}
			r->count = (long)v->valuedouble;
		} else if (strcmp(k, "latency_ms") == 0) {
			if (faults_ms(v, &r->latency_ms, err, "rule latency_ms must be 0..600000") < 0)
				return -1;
		} else if (strcmp(k, "reason") == 0) {
			if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(r->reason)) {
				*err = "rule reason must be a short string";
				return -1;
			}
			strcpy(r->reason, v->valuestring);
		} else {
			*err = "unknown rule field (known: method, path_prefix, status, count, latency_ms, reason)";
			return -1;
		}
	}
	if (r->status == 0 && r->latency_ms == 0) {
		*err = "a rule needs a status or a latency_ms";
		return -1;
	}
	if (r->path_prefix == NULL)
		r->path_prefix = xstrdup("");
	return 0;
}

static int faults_parse(const cJSON *obj, struct faults *f, const char **err)
{
	const cJSON *v;

	if (!cJSON_IsObject(obj)) {
		*err = "body must be a JSON object";
		return -1;
	}
	cJSON_ArrayForEach(v, obj) {
		const char *k = v->string;
		const cJSON *item;

		if (strcmp(k, "latency_ms") == 0) {
			if (faults_ms(v, &f->latency_ms, err, "latency_ms must be 0..600000") < 0)
				return -1;
		} else if (strcmp(k, "latency_jitter_ms") == 0) {
			if (faults_ms(v, &f->jitter_ms, err, "latency_jitter_ms must be 0..600000") < 0)
				return -1;
		} else if (strcmp(k, "spike_every") == 0) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
				*err = "spike_every must be a count";
				return -1;
			}
			f->spike_every = (long)v->valuedouble;
		} else if (strcmp(k, "spike_ms") == 0) {
			if (faults_ms(v, &f->spike_ms, err, "spike_ms must be 0..600000") < 0)
				return -1;
		} else if (strcmp(k, "fail_fraction") == 0) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1) {
				*err = "fail_fraction must be between 0 and 1";
				return -1;
			}
			f->fail_fraction = v->valuedouble;
		} else if (strcmp(k, "fail_statuses") == 0) {
			if (!cJSON_IsArray(v)) {
				*err = "fail_statuses must be an array";
				return -1;
			}
			free(f->fail_statuses);
			f->fail_statuses = NULL;
			f->nfail = 0;
			cJSON_ArrayForEach(item, v) {
				f->fail_statuses = xreallocarray(f->fail_statuses, f->nfail + 1, sizeof(int));
				if (faults_status(item, &f->fail_statuses[f->nfail], err) < 0)
					return -1;
				f->nfail++;
			}
		} else if (strcmp(k, "fail_path_prefix") == 0) {
			if (!cJSON_IsString(v)) {
				*err = "fail_path_prefix must be a string";
				return -1;
			}
			free(f->fail_path_prefix);
			f->fail_path_prefix = xstrdup(v->valuestring);
		} else if (strcmp(k, "rules") == 0) {
			if (!cJSON_IsArray(v)) {
				*err = "rules must be an array";
				return -1;
			}
			cJSON_ArrayForEach(item, v) {
				f->rules = xreallocarray(f->rules, f->nrules + 1, sizeof(*f->rules));
				f->nrules++;
				if (faults_parse_rule(item, &f->rules[f->nrules - 1], err) < 0)
					return -1;
			}
		} else if (strcmp(k, "seed") == 0) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
				*err = "seed must be a non-negative number";
				return -1;
			}
			faults_seed(f, (uint64_t)v->valuedouble);
		} else {
			*err = "unknown fault setting (known: latency_ms, latency_jitter_ms, spike_every, spike_ms, "
			       "fail_fraction, fail_statuses, fail_path_prefix, rules, seed)";
			return -1;
		}
	}
	if (f->fail_fraction > 0 && f->nfail == 0) {
		f->fail_statuses = xmalloc(3 * sizeof(int));
		f->fail_statuses[0] = 500;
		f->fail_statuses[1] = 503;
		f->fail_statuses[2] = 429;
		f->nfail = 3;
	}
	return 0;
}

int faults_set_json(const cJSON *obj, const char **err)
{
	struct faults f = {0};
	uint64_t seed;

	randombytes_buf(&seed, sizeof(seed));
	faults_seed(&f, seed >> 11);
	if (faults_parse(obj, &f, err) < 0) {
		faults_release(&f);
		return -1;
	}
	faults_release(&faults);
	faults = f;
	log_info("faults set", LOG_INT("rules", (long long)faults.nrules), LOG_INT("latency_ms", faults.latency_ms),
	         LOG_DOUBLE("fail_fraction", faults.fail_fraction), LOG_INT("seed", (long long)faults.seed));
	return 0;
}

static bool faults_prefix(const char *path, const char *prefix)
{
	return prefix == NULL || strncmp(path, prefix, strlen(prefix)) == 0;
}

void faults_decide(const char *method, const char *path, struct fault *out)
{
	memset(out, 0, sizeof(*out));
	faults.seen++;
	out->delay_ms = faults.latency_ms;
	if (faults.jitter_ms > 0)
		out->delay_ms += (long)(faults_next() % (uint64_t)(faults.jitter_ms + 1));
	if (faults.spike_every > 0 && faults.seen % (unsigned long long)faults.spike_every == 0)
		out->delay_ms += faults.spike_ms;
	for (size_t i = 0; i < faults.nrules; i++) {
		struct fault_rule *r = &faults.rules[i];

		if ((r->method[0] != '\0' && strcasecmp(r->method, method) != 0) ||
		    !faults_prefix(path, r->path_prefix))
			continue;
		out->delay_ms += r->latency_ms;
		out->status = r->status;
		memcpy(out->reason, r->reason, sizeof(out->reason));
		if (--r->count == 0) {
			free(r->path_prefix);
			memmove(r, r + 1, (faults.nrules - i - 1) * sizeof(*r));
			faults.nrules--;
		}
		return;
	}
	if (faults.fail_fraction > 0 && faults_prefix(path, faults.fail_path_prefix) &&
	    (double)(faults_next() >> 11) / 9007199254740992.0 < faults.fail_fraction)
		out->status = faults.fail_statuses[faults_next() % faults.nfail];
}

cJSON *faults_to_json(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *statuses = cJSON_CreateArray();
	cJSON *rules = cJSON_CreateArray();

	cJSON_AddNumberToObject(o, "latency_ms", (double)faults.latency_ms);
	cJSON_AddNumberToObject(o, "latency_jitter_ms", (double)faults.jitter_ms);
	cJSON_AddNumberToObject(o, "spike_every", (double)faults.spike_every);
	cJSON_AddNumberToObject(o, "spike_ms", (double)faults.spike_ms);
	cJSON_AddNumberToObject(o, "fail_fraction", faults.fail_fraction);
	for (size_t i = 0; i < faults.nfail; i++)
		cJSON_AddItemToArray(statuses, cJSON_CreateNumber(faults.fail_statuses[i]));
	cJSON_AddItemToObject(o, "fail_statuses", statuses);
	if (faults.fail_path_prefix != NULL)
		cJSON_AddStringToObject(o, "fail_path_prefix", faults.fail_path_prefix);
	for (size_t i = 0; i < faults.nrules; i++) {
		const struct fault_rule *r = &faults.rules[i];
		cJSON *j = cJSON_CreateObject();

		if (r->method[0] != '\0')
			cJSON_AddStringToObject(j, "method", r->method);
		cJSON_AddStringToObject(j, "path_prefix", r->path_prefix);
		if (r->status != 0)
			cJSON_AddNumberToObject(j, "status", r->status);
		cJSON_AddNumberToObject(j, "count", (double)r->count);
		if (r->latency_ms != 0)
			cJSON_AddNumberToObject(j, "latency_ms", (double)r->latency_ms);
		if (r->reason[0] != '\0')
			cJSON_AddStringToObject(j, "reason", r->reason);
		cJSON_AddItemToArray(rules, j);
	}
	cJSON_AddItemToObject(o, "rules", rules);
	cJSON_AddNumberToObject(o, "seed", (double)faults.seed);
	return o;
}
