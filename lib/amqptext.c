/*
 * amqptext: librabbitmq values as strings (see amqptext.h).
 */
#include "amqptext.h"

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
