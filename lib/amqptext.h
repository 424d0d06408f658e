/*
 * amqptext: librabbitmq's values as C strings.
 *
 * lib/mq hands deliveries to the services with every header as text, and
 * gcalctl reads dead letters the same way; both go through here so a header,
 * or the reason a call failed, reads the same wherever it is shown.
 */
#ifndef AMQPTEXT_H
#define AMQPTEXT_H

#include <amqp.h>

/* A copy of the bytes as a NUL-terminated string ("" for none). The caller frees it. */
char *amqptext_bytes(amqp_bytes_t b);

/*
 * A header value as text: strings as they are, integers and timestamps in
 * decimal, booleans as true/false; NULL for tables, arrays and floats. The
 * caller frees it.
 */
char *amqptext_field(const amqp_field_value_t *v);

/* The property if its flag is set (a copy the caller frees), else NULL. */
char *amqptext_prop(const amqp_basic_properties_t *p, amqp_flags_t flag, amqp_bytes_t value);

/*
 * Why an RPC or library call failed, as one line into buf: the broker's
 * "406 PRECONDITION_FAILED - ..." or the library's words.
 */
void amqptext_reply(amqp_rpc_reply_t r, char *buf, size_t len);

#endif
