/*
 * amqptext: librabbitmq's values as C strings.
 *
 * lib/mq hands deliveries to the services with every header as text, and
 * gcalctl reads dead letters the same way; both go through here so a header
 * reads the same wherever it is shown.
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

#endif
