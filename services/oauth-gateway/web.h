/*
 * web: the files of the reference web UI, embedded at build time.
 *
 * gen_static.py turns static/ into web_files[] when the gateway is built,
 * so a running gateway reads no files and a deployment cannot serve a stale
 * or foreign page; web.c serves them when WEB_UI is on (see gateway.h).
 */
#ifndef WEB_H
#define WEB_H

#include <stddef.h>

struct web_file {
	const char *name;	/* the file's name under static/, "app.js" */
	const char *type;	/* its Content-Type */
	const char *etag;	/* a quoted hash of its bytes */
	size_t len;
	const char *data;
};

extern const struct web_file web_files[];
extern const size_t web_nfiles;

#endif
