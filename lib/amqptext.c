/*
 * amqptext: librabbitmq values as strings (see amqptext.h).
 */
#include "amqptext.h"

#include <stdio.h>

#include "xmalloc.h"

char *amqptext_bytes(amqp_bytes_t b)
{
	return b.bytes == NULL ? xstrdup("") : xstrndup(b.bytes, b.len);
}

char *amqptext_field(const amqp_field_value_t *v)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		return amqptext_bytes(v->value.bytes);
	case AMQP_FIELD_KIND_BOOLEAN:
		return xstrdup(v->value.boolean ? "true" : "false");
	case AMQP_FIELD_KIND_I8:
		return xasprintf("%d", v->value.i8);
	case AMQP_FIELD_KIND_U8:
		return xasprintf("%u", v->value.u8);
	case AMQP_FIELD_KIND_I16:
		return xasprintf("%d", v->value.i16);
	case AMQP_FIELD_KIND_U16:
		return xasprintf("%u", v->value.u16);
	case AMQP_FIELD_KIND_I32:
		return xasprintf("%ld", (long)v->value.i32);
	case AMQP_FIELD_KIND_U32:
		return xasprintf("%lu", (unsigned long)v->value.u32);
	case AMQP_FIELD_KIND_I64:
		return xasprintf("%lld", (long long)v->value.i64);
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP:
		return xasprintf("%llu", (unsigned long long)v->value.u64);
	default:
		return NULL;
	}
}

char *amqptext_prop(const amqp_basic_properties_t *p, amqp_flags_t flag, amqp_bytes_t value)
{
	return (p->_flags & flag) ? amqptext_bytes(value) : NULL;
}

void amqptext_reply(amqp_rpc_reply_t r, char *buf, size_t len)
{
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
		snprintf(buf, len, "%s", amqp_error_string2(r.library_error));
	} else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *c = r.reply.decoded;

		snprintf(buf, len, "%u %.*s", c->reply_code, (int)c->reply_text.len, (char *)c->reply_text.bytes);
	} else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_t *c = r.reply.decoded;

		snprintf(buf, len, "%u %.*s", c->reply_code, (int)c->reply_text.len, (char *)c->reply_text.bytes);
	} else if (r.reply_type == AMQP_RESPONSE_NONE) {
		snprintf(buf, len, "no reply");
	} else {
		snprintf(buf, len, "unexpected method 0x%08x", r.reply.id);
	}
}
