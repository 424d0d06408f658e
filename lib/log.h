/*
 * log: one JSON object per line on stderr.
 *
 * Operators feed these lines to a log pipeline, so every line is complete
 * JSON with a timestamp, level, service name, message and typed fields:
 *
 *	log_info("meeting created", LOG_STR("lead", id), LOG_INT("ms", ms));
 *
 * Secrets must never reach a log, whoever calls us: fields whose key names a
 * credential (token, secret, password, code, authorization, ...) are printed
 * as "[redacted]", values registered with log_add_secret() are masked
 * wherever they appear, strings that look like OAuth tokens are masked, and
 * LOG_EMAIL() prints an address as "j***@example.com".
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

enum log_field_type {
	LOG_FIELD_END,
	LOG_FIELD_STR,
	LOG_FIELD_INT,
	LOG_FIELD_DOUBLE,
	LOG_FIELD_BOOL,
	LOG_FIELD_EMAIL,
};

struct log_field {
	const char *key;
	enum log_field_type type;
	union {
		const char *s;
		long long i;
		double d;
	} v;
};

#define LOG_STR(k, val)    ((struct log_field){ .key = (k), .type = LOG_FIELD_STR, .v.s = (val) })
#define LOG_INT(k, val)    ((struct log_field){ .key = (k), .type = LOG_FIELD_INT, .v.i = (long long)(val) })
#define LOG_DOUBLE(k, val) ((struct log_field){ .key = (k), .type = LOG_FIELD_DOUBLE, .v.d = (double)(val) })
#define LOG_BOOL(k, val)   ((struct log_field){ .key = (k), .type = LOG_FIELD_BOOL, .v.i = !!(val) })
#define LOG_EMAIL(k, val)  ((struct log_field){ .key = (k), .type = LOG_FIELD_EMAIL, .v.s = (val) })
#define LOG_END            ((struct log_field){ .key = 0, .type = LOG_FIELD_END })

/* Service name and threshold; before this call lines go out at info level as "unknown". */
void log_init(const char *service, enum log_level min_level);
/* Change the threshold (after configuration is read). */
void log_set_level(enum log_level min_level);
/* "debug", "info", "warn"/"warning", "error" (any case); 0 or -1. */
int log_level_parse(const char *name, enum log_level *out);
bool log_enabled(enum log_level level);
/*
 * Mask every later occurrence of this value (a client secret, a password).
 * Values shorter than 6 bytes are ignored: masking them would mangle text.
 * The log keeps its own copy.
 */
void log_add_secret(const char *value);
/* Release what log_add_secret() kept (for leak checkers at exit). */
void log_shutdown(void);

/* Fields follow msg and end with LOG_END; use the macros below. */
void log_emit(enum log_level level, const char *msg, ...);

#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__, LOG_END)
#define log_info(...)  log_emit(LOG_INFO, __VA_ARGS__, LOG_END)
#define log_warn(...)  log_emit(LOG_WARN, __VA_ARGS__, LOG_END)
#define log_error(...) log_emit(LOG_ERROR, __VA_ARGS__, LOG_END)

/*
 * Write "j***@example.com" for an address into buf (always NUL-terminated).
 * Exposed for the places that show addresses outside the log (metrics labels
 * must not, but error replies may).
 */
void log_mask_email(const char *email, char *buf, unsigned bufsize);

#endif
