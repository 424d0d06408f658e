/*
 * broker: blocking AMQP for gcalctl (see broker.h).
 */
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "amqptext.h"
#include "cfg.h"
#include "log.h"
#include "xmalloc.h"

/* Connect, every synchronous call and each confirm: a broker on a near network answers far sooner. */
#define BROKER_TIMEOUT_S 10

struct broker {
	amqp_connection_state_t conn;
	amqp_channel_t channel;
	uint64_t published;	/* publishes on this channel: the broker numbers confirms from 1 */
	char *where;		/* host:port/vhost for log lines (never the password) */
	char *user;		/* the login, which every publish names as its user-id */
};

struct broker_message {
	amqp_message_t raw;	/* properties and body as received, in their own pool */
	uint64_t tag;
	amqp_channel_t channel;	/* delivery tags are per channel */
	struct mq_message view;
	char *exchange, *routing_key, *content_type, *message_id, *correlation_id, *reply_to, *type, *user_id;
	struct mq_header *headers;
	char *death_reason, *death_queue, *death_routing_key;
	int64_t death_time;
};

static bool broker_bytes_is(amqp_bytes_t b, const char *s)
{
	return b.len == strlen(s) && (b.len == 0 || memcmp(b.bytes, s, b.len) == 0);
}

static void broker_log_reply(struct broker *b, const char *msg, amqp_rpc_reply_t r)
{
	char text[256];

	amqptext_reply(r, text, sizeof(text));
	log_error(msg, LOG_STR("broker", b->where), LOG_STR("error", text));
}

/* A fresh channel in confirm mode. A channel the broker closed (e.g. a 404) cannot be used again. */
static int broker_open_channel(struct broker *b)
{
	b->channel++;
	b->published = 0;
	if (amqp_channel_open(b->conn, b->channel) == NULL || amqp_confirm_select(b->conn, b->channel) == NULL) {
		broker_log_reply(b, "cannot open an AMQP channel", amqp_get_rpc_reply(b->conn));
		return -1;
	}
	return 0;
}

/*
 * After a channel-level error the broker waits for close-ok before the
 * channel number is free; acknowledge and carry on on a new channel.
 */
static int broker_recover(struct broker *b, amqp_rpc_reply_t r)
{
	amqp_channel_close_ok_t ok = { 0 };

	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
		return -1;
	amqp_send_method(b->conn, b->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
	return broker_open_channel(b);
}

static struct broker *broker_open_one(const char *url)
{
	struct timeval timeout = { BROKER_TIMEOUT_S, 0 };
	struct broker *b = xcalloc(1, sizeof(*b));
	char *parsed = xstrdup(url);
	struct amqp_connection_info info;
	amqp_table_entry_t name;
	amqp_table_t properties = { 1, &name };
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	int st;

	amqp_default_connection_info(&info);
	if (amqp_parse_url(parsed, &info) != AMQP_STATUS_OK || info.ssl) {
		log_error("AMQP_URL must be amqp://user:password@host:port/vhost");
		free(parsed);
		free(b);
		return NULL;
	}
	b->where = xasprintf("%s:%d/%s", info.host, info.port, info.vhost);
	b->user = xstrdup(info.user);
	b->conn = amqp_new_connection();
	sock = b->conn != NULL ? amqp_tcp_socket_new(b->conn) : NULL;
	if (sock == NULL) {
		log_error("cannot create an AMQP socket");
		goto fail;
	}
	amqp_set_handshake_timeout(b->conn, &timeout);
	amqp_set_rpc_timeout(b->conn, &timeout);
	st = amqp_socket_open_noblock(sock, info.host, info.port, &timeout);
	if (st != AMQP_STATUS_OK) {
		log_error("cannot connect to the broker", LOG_STR("broker", b->where),
			  LOG_STR("error", amqp_error_string2(st)));
		goto fail;
	}
	/* The connection's name in the management UI, so an operator sees who holds the messages. */
	name.key = amqp_cstring_bytes("connection_name");
	name.value.kind = AMQP_FIELD_KIND_UTF8;
	name.value.value.bytes = amqp_cstring_bytes("gcalctl");
	r = amqp_login_with_properties(b->conn, info.vhost, AMQP_DEFAULT_MAX_CHANNELS, AMQP_DEFAULT_FRAME_SIZE, 0,
				       &properties, AMQP_SASL_METHOD_PLAIN, info.user, info.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		broker_log_reply(b, "cannot log in to the broker", r);
		goto fail;
	}
	if (broker_open_channel(b) < 0)
		goto fail;
	free(parsed);
	return b;
fail:
	free(parsed);
	broker_close(b);
	return NULL;
}

/* AMQP_URL may list several brokers: the first that answers is the one. */
struct broker *broker_open(const char *url)
{
	struct broker *b = NULL;
	char **urls;
	size_t n;

	if (strchr(url, ',') == NULL)
		return broker_open_one(url);
	urls = cfg_split_urls(url, &n);
	if (urls == NULL) {
		log_error("AMQP_URL must be amqp:// URLs separated by commas");
		return NULL;
	}
	for (size_t i = 0; i < n && b == NULL; i++)
		b = broker_open_one(urls[i]);
	cfg_urls_free(urls);
	return b;
}

const char *broker_user(const struct broker *b)
{
	return b->user;
}

void broker_close(struct broker *b)
{
	if (b == NULL)
		return;
	if (b->conn != NULL) {
		/* A clean close makes the broker process our acks before it requeues what is left. */
		if (b->channel > 0)
			amqp_channel_close(b->conn, b->channel, AMQP_REPLY_SUCCESS);
		amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(b->conn);
	}
	free(b->where);
	free(b->user);
	free(b);
}

long broker_queue_depth(struct broker *b, const char *queue)
{
	amqp_queue_declare_ok_t *ok =
		amqp_queue_declare(b->conn, b->channel, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
	amqp_rpc_reply_t r;
	char text[256];

	if (ok != NULL)
		return (long)ok->message_count;
	r = amqp_get_rpc_reply(b->conn);
	amqptext_reply(r, text, sizeof(text));
	log_error("cannot read the queue (a service declares it when it first starts)", LOG_STR("queue", queue),
		  LOG_STR("broker", b->where), LOG_STR("error", text));
	broker_recover(b, r);
	return -1;
}

/* x-death is an array of tables, newest first; RabbitMQ adds it when it dead-letters a message itself. */
static void broker_read_death(struct broker_message *m, const amqp_field_value_t *v)
{
	const amqp_table_t *t;

	if (v->kind != AMQP_FIELD_KIND_ARRAY || v->value.array.num_entries < 1 ||
	    v->value.array.entries[0].kind != AMQP_FIELD_KIND_TABLE)
		return;
	t = &v->value.array.entries[0].value.table;
	for (int i = 0; i < t->num_entries; i++) {
		const amqp_table_entry_t *e = &t->entries[i];

		if (broker_bytes_is(e->key, "reason") && m->death_reason == NULL)
			m->death_reason = amqptext_field(&e->value);
		else if (broker_bytes_is(e->key, "queue") && m->death_queue == NULL)
			m->death_queue = amqptext_field(&e->value);
		else if (broker_bytes_is(e->key, "time") && e->value.kind == AMQP_FIELD_KIND_TIMESTAMP)
			m->death_time = (int64_t)e->value.value.u64;
		else if (broker_bytes_is(e->key, "routing-keys") && e->value.kind == AMQP_FIELD_KIND_ARRAY &&
			 e->value.value.array.num_entries > 0 && m->death_routing_key == NULL)
			m->death_routing_key = amqptext_field(&e->value.value.array.entries[0]);
	}
}

/* The text view of a message just read. */
static void broker_build_view(struct broker_message *m)
{
	const amqp_basic_properties_t *p = &m->raw.properties;
	struct mq_message *v = &m->view;

	m->content_type = amqptext_prop(p, AMQP_BASIC_CONTENT_TYPE_FLAG, p->content_type);
	m->message_id = amqptext_prop(p, AMQP_BASIC_MESSAGE_ID_FLAG, p->message_id);
	m->correlation_id = amqptext_prop(p, AMQP_BASIC_CORRELATION_ID_FLAG, p->correlation_id);
	m->reply_to = amqptext_prop(p, AMQP_BASIC_REPLY_TO_FLAG, p->reply_to);
	m->type = amqptext_prop(p, AMQP_BASIC_TYPE_FLAG, p->type);
	m->user_id = amqptext_prop(p, AMQP_BASIC_USER_ID_FLAG, p->user_id);
	v->exchange = m->exchange;
	v->routing_key = m->routing_key;
	v->body = m->raw.body.bytes;
	v->body_len = m->raw.body.len;
	v->content_type = m->content_type;
	v->message_id = m->message_id;
	v->correlation_id = m->correlation_id;
	v->reply_to = m->reply_to;
	v->type = m->type;
	v->user_id = m->user_id;
	v->timestamp = (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? (int64_t)p->timestamp : 0;
	v->transient = (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && p->delivery_mode == AMQP_DELIVERY_NONPERSISTENT;
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG) || p->headers.num_entries <= 0)
		return;
	m->headers = xcalloc((size_t)p->headers.num_entries, sizeof(*m->headers));
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];
		char *value = amqptext_field(&e->value);

		if (broker_bytes_is(e->key, "x-death"))
			broker_read_death(m, &e->value);
		if (value == NULL)
			continue;
		m->headers[v->nheaders].key = amqptext_bytes(e->key);
		m->headers[v->nheaders].value = value;
		v->nheaders++;
	}
	v->headers = m->headers;
}

int broker_get(struct broker *b, const char *queue, struct broker_message **out)
{
	amqp_rpc_reply_t r;
	const amqp_basic_get_ok_t *ok;
	struct broker_message *m;

	amqp_maybe_release_buffers(b->conn);
	r = amqp_basic_get(b->conn, b->channel, amqp_cstring_bytes(queue), 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		broker_log_reply(b, "cannot take a message from the queue", r);
		return -1;
	}
	if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
		return 0;
	ok = r.reply.decoded;
	m = xcalloc(1, sizeof(*m));
	m->tag = ok->delivery_tag;
	m->channel = b->channel;
	/* Copied before the next read can reuse the memory the method was decoded into. */
	m->exchange = amqptext_bytes(ok->exchange);
	m->routing_key = amqptext_bytes(ok->routing_key);
	r = amqp_read_message(b->conn, b->channel, &m->raw, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		broker_log_reply(b, "cannot read a message from the queue", r);
		free(m->exchange);
		free(m->routing_key);
		free(m);
		return -1;
	}
	broker_build_view(m);
	*out = m;
	return 1;
}

const struct mq_message *broker_message_view(const struct broker_message *m)
{
	return &m->view;
}

void broker_message_death(const struct broker_message *m, struct broker_death *out)
{
	out->reason = m->death_reason;
	out->queue = m->death_queue;
	out->routing_key = m->death_routing_key;
	out->time = m->death_time;
}

void broker_message_free(struct broker_message *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->view.nheaders; i++) {
		free((char *)m->headers[i].key);
		free((char *)m->headers[i].value);
	}
	free(m->headers);
	free(m->exchange);
	free(m->routing_key);
	free(m->content_type);
	free(m->message_id);
	free(m->correlation_id);
	free(m->reply_to);
	free(m->type);
	free(m->user_id);
	free(m->death_reason);
	free(m->death_queue);
	free(m->death_routing_key);
	amqp_destroy_message(&m->raw);
	free(m);
}

int broker_ack(struct broker *b, const struct broker_message *m)
{
	int st;

	if (m->channel != b->channel) {
		log_error("cannot acknowledge a message taken on a channel the broker has closed",
			  LOG_STR("message_id", m->message_id));
		return -1;
	}
	st = amqp_basic_ack(b->conn, b->channel, m->tag, 0);
	if (st != AMQP_STATUS_OK) {
		log_error("cannot acknowledge a message", LOG_STR("message_id", m->message_id),
			  LOG_STR("error", amqp_error_string2(st)));
		return -1;
	}
	return 0;
}

/* Whether a confirm for tag (and, with multiple, every tag before it) settles publish number seq. */
static bool broker_covers(uint64_t tag, amqp_boolean_t multiple, uint64_t seq)
{
	return tag == seq || (multiple && tag >= seq);
}

/*
 * Wait for the verdict on publish number seq. A basic.return (unroutable
 * with mandatory) arrives before the ack, so it is remembered until then.
 */
static int broker_wait_confirm(struct broker *b, uint64_t seq, const char *exchange, const char *routing_key)
{
	bool returned = false;

	for (;;) {
		struct timeval timeout = { BROKER_TIMEOUT_S, 0 };
		amqp_frame_t f;
		int st = amqp_simple_wait_frame_noblock(b->conn, &f, &timeout);

		if (st != AMQP_STATUS_OK) {
			log_error("no confirm from the broker", LOG_STR("broker", b->where),
				  LOG_STR("error", amqp_error_string2(st)));
			return -1;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_RETURN_METHOD: {
			amqp_message_t msg;

			returned = true;
			if (amqp_read_message(b->conn, f.channel, &msg, 0).reply_type == AMQP_RESPONSE_NORMAL)
				amqp_destroy_message(&msg);
			break;
		}
		case AMQP_BASIC_ACK_METHOD: {
			const amqp_basic_ack_t *ack = f.payload.method.decoded;

			if (!broker_covers(ack->delivery_tag, ack->multiple, seq))
				break;
			if (!returned)
				return 0;
			log_error("no queue took the message (is the topology declared? start the services once)",
				  LOG_STR("exchange", exchange), LOG_STR("routing_key", routing_key));
			return -1;
		}
		case AMQP_BASIC_NACK_METHOD: {
			const amqp_basic_nack_t *nack = f.payload.method.decoded;

			if (!broker_covers(nack->delivery_tag, nack->multiple, seq))
				break;
			log_error("the broker refused the message (a full queue rejects publishes)",
				  LOG_STR("exchange", exchange), LOG_STR("routing_key", routing_key));
			return -1;
		}
		case AMQP_CHANNEL_CLOSE_METHOD:
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f.payload.method };

			broker_log_reply(b, "the broker closed the channel while publishing", r);
			return -1;
		}
		default:
			break;
		}
	}
}

static int broker_send(struct broker *b, const char *exchange, const char *routing_key,
		       const amqp_basic_properties_t *props, amqp_bytes_t body)
{
	int st;

	amqp_maybe_release_buffers(b->conn);
	st = amqp_basic_publish(b->conn, b->channel, amqp_cstring_bytes(exchange), amqp_cstring_bytes(routing_key), 1,
				0, props, body);
	if (st != AMQP_STATUS_OK) {
		log_error("cannot publish", LOG_STR("exchange", exchange), LOG_STR("routing_key", routing_key),
			  LOG_STR("error", amqp_error_string2(st)));
		return -1;
	}
	return broker_wait_confirm(b, ++b->published, exchange, routing_key);
}

int broker_publish(struct broker *b, const struct mq_message *msg)
{
	amqp_basic_properties_t p = { 0 };
	amqp_table_entry_t *h = msg->nheaders ? xcalloc(msg->nheaders, sizeof(*h)) : NULL;
	amqp_bytes_t body = { msg->body_len, (void *)msg->body };
	int rc;

	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_USER_ID_FLAG;
	p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	p.user_id = amqp_cstring_bytes(b->user);
	if (msg->content_type != NULL) {
		p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
		p.content_type = amqp_cstring_bytes(msg->content_type);
	}
	if (msg->message_id != NULL) {
		p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		p.message_id = amqp_cstring_bytes(msg->message_id);
	}
	if (msg->type != NULL) {
		p._flags |= AMQP_BASIC_TYPE_FLAG;
		p.type = amqp_cstring_bytes(msg->type);
	}
	if (msg->timestamp != 0) {
		p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
		p.timestamp = (uint64_t)msg->timestamp;
	}
	for (size_t i = 0; i < msg->nheaders; i++) {
		h[i].key = amqp_cstring_bytes(msg->headers[i].key);
		h[i].value.kind = AMQP_FIELD_KIND_UTF8;
		h[i].value.value.bytes = amqp_cstring_bytes(msg->headers[i].value);
	}
	if (msg->nheaders > 0) {
		p._flags |= AMQP_BASIC_HEADERS_FLAG;
		p.headers = (amqp_table_t){ (int)msg->nheaders, h };
	}
	rc = broker_send(b, msg->exchange, msg->routing_key, &p, body);
	free(h);
	return rc;
}

int broker_republish(struct broker *b, const struct broker_message *m, const char *queue, broker_keep_cb keep)
{
	amqp_basic_properties_t p = m->raw.properties;
	const amqp_table_t *old = &p.headers;
	bool has_headers = (p._flags & AMQP_BASIC_HEADERS_FLAG) && old->num_entries > 0;
	amqp_table_entry_t *h = has_headers ? xcalloc((size_t)old->num_entries, sizeof(*h)) : NULL;
	int n = 0, rc;

	for (int i = 0; has_headers && i < old->num_entries; i++) {
		char *key = amqptext_bytes(old->entries[i].key);

		if (keep(key))
			h[n++] = old->entries[i];
		free(key);
	}
	p._flags &= ~AMQP_BASIC_HEADERS_FLAG;
	if (n > 0) {
		p._flags |= AMQP_BASIC_HEADERS_FLAG;
		p.headers = (amqp_table_t){ n, h };
	}
	p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_USER_ID_FLAG;
	p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	/* The copy is ours: RabbitMQ refuses any user-id but our own login (lib/mq does the same). */
	p.user_id = amqp_cstring_bytes(b->user);
	rc = broker_send(b, "", queue, &p, m->raw.body);
	free(h);
	return rc;
}
