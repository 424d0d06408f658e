/*
 * web: the files of the reference web UI, embedded at build time.
 *
 * lib/embed.py turns static/ into web_files[] when the gateway is built,
 * so a running gateway reads no files and a deployment cannot serve a stale
 * or foreign page; web.c serves them when WEB_UI is on (see gateway.h).
 */
#ifndef WEB_H
#define WEB_H

#include <stddef.h>

#include "embed.h"

extern const struct embed_file web_files[];
extern const size_t web_files_count;

#endif
