/* cli_text.c - a local replica of one co-edited text field (see cli_text.h). */
#include "cli_text.h"

#include <stdlib.h>
#include <string.h>

#include "cli_pack.h"

int cli_text_init(struct cli_text *t, const char *meeting, const char *type, int64_t id,
                  const char *id_str, const char *field, const char *text, size_t len, int64_t seq)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->meeting, sizeof(t->meeting), "%s", meeting);
    snprintf(t->type, sizeof(t->type), "%s", type);
    snprintf(t->id_str, sizeof(t->id_str), "%s", id_str ? id_str : "");
    snprintf(t->field, sizeof(t->field), "%s", field);
    t->id = id;
    t->seq = seq;
    proto_op_init(&t->sent);
    proto_op_init(&t->buffer);
    t->text = malloc(len + 1);
    if (t->text == NULL) {
        return PROTO_ENOMEM;
    }
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    t->len = len;
    return 0;
}

void cli_text_free(struct cli_text *t)
{
    free(t->text);
    t->text = NULL;
    proto_op_free(&t->sent);
    proto_op_free(&t->buffer);
}

bool cli_text_idle(const struct cli_text *t)
{
    return !t->inflight && !t->has_buffer;
}

static int apply_local(struct cli_text *t, const struct proto_op *op)
{
    char *out = NULL;
    size_t out_len = 0;
    int rc = proto_op_apply(t->text, t->len, op, SIZE_MAX, &out, &out_len);
    if (rc == 0) {
        free(t->text);
        t->text = out;
        t->len = out_len;
    }
    return rc;
}

int cli_text_local(struct cli_text *t, const struct proto_op *op)
{
    int rc = apply_local(t, op);
    if (rc != 0) {
        return rc;
    }
    if (!t->has_buffer) {
        rc = proto_op_copy(op, &t->buffer);
        t->has_buffer = rc == 0;
        return rc;
    }
    return proto_op_compose(&t->buffer, op, &t->buffer);
}

/* Sends op as text.edit with base t->seq and the cid in t->inflight_cid. */
static int send_edit(struct cli_text *t, struct cli_conn *c, const struct proto_op *op)
{
    struct proto_buf params = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &params, proto_buf_msgpack_write);
    msgpack_pack_map(&pk, 7);
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, t->meeting);
    proto_pack_cstr(&pk, "type");
    proto_pack_cstr(&pk, t->type);
    proto_pack_cstr(&pk, "id");
    if (t->id_str[0]) {
        proto_pack_cstr(&pk, t->id_str);
    } else {
        msgpack_pack_int64(&pk, t->id);
    }
    proto_pack_cstr(&pk, "field");
    proto_pack_cstr(&pk, t->field);
    proto_pack_cstr(&pk, "base");
    msgpack_pack_int64(&pk, t->seq);
    proto_pack_cstr(&pk, "cid");
    proto_pack_cstr(&pk, t->inflight_cid);
    proto_pack_cstr(&pk, "op");
    proto_op_encode(op, &pk);
    int rc = cli_conn_send(c, "text.edit", params.data, params.len, &t->inflight_msgid);
    proto_buf_free(&params, 0);
    return rc;
}

int cli_text_resend(struct cli_text *t, struct cli_conn *c)
{
    if (!t->inflight) {
        return cli_text_flush(t, c);
    }
    if (proto_op_is_noop(&t->sent)) {
        /* Transformed into nothing by what others did meanwhile: nothing left to send. */
        t->inflight = false;
        return cli_text_flush(t, c);
    }
    return send_edit(t, c, &t->sent);
}

int cli_text_flush(struct cli_text *t, struct cli_conn *c)
{
    if (t->inflight || !t->has_buffer) {
        return 0;
    }
    if (proto_op_is_noop(&t->buffer)) {
        proto_op_free(&t->buffer);
        t->has_buffer = false;
        return 0;
    }
    uint8_t rnd[12];
    randombytes_buf(rnd, sizeof(rnd));
    proto_b64url_encode(rnd, sizeof(rnd), t->inflight_cid, sizeof(t->inflight_cid));
    int rc = send_edit(t, c, &t->buffer);
    if (rc != 0) {
        return rc;
    }
    /* The buffer is now in flight. */
    proto_op_free(&t->sent);
    t->sent = t->buffer;
    proto_op_init(&t->buffer);
    t->has_buffer = false;
    t->inflight = true;
    return 0;
}

static bool str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static bool is_this_object(const struct cli_text *t, const msgpack_object *p)
{
    const msgpack_object *id = proto_mp_map_get(p, "id");
    if (!str_is(proto_mp_map_get(p, "type"), t->type) || id == NULL) {
        return false;
    }
    if (t->id_str[0]) {
        return str_is(id, t->id_str);
    }
    return id->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (int64_t)id->via.u64 == t->id;
}

/* A server op S (made after everything this replica's server part holds). */
static int remote_op(struct cli_text *t, const msgpack_object *opo)
{
    struct proto_op s, tmp;
    int rc = 0;
    proto_op_init(&s);
    proto_op_init(&tmp);
    if (opo->type == MSGPACK_OBJECT_ARRAY && opo->via.array.size == 0) {
        return 0; /* an edit transformed into nothing */
    }
    if ((rc = proto_op_decode(opo, &s)) != 0) {
        goto cleanup;
    }
    if (t->inflight) {
        /* P' = transform(P, S, left); S' = transform(S, P, right) */
        if ((rc = proto_op_transform(&t->sent, &s, PROTO_OP_LEFT, &tmp)) != 0 ||
            (rc = proto_op_transform(&s, &t->sent, PROTO_OP_RIGHT, &s)) != 0) {
            goto cleanup;
        }
        proto_op_free(&t->sent);
        t->sent = tmp;
        proto_op_init(&tmp);
    }
    if (t->has_buffer) {
        if ((rc = proto_op_transform(&t->buffer, &s, PROTO_OP_LEFT, &tmp)) != 0 ||
            (rc = proto_op_transform(&s, &t->buffer, PROTO_OP_RIGHT, &s)) != 0) {
            goto cleanup;
        }
        proto_op_free(&t->buffer);
        t->buffer = tmp;
        proto_op_init(&tmp);
    }
    rc = apply_local(t, &s);
    t->remote_ops++;
cleanup:
    proto_op_free(&s);
    proto_op_free(&tmp);
    return rc;
}

static int handle_event(struct cli_text *t, const msgpack_object *p)
{
    const msgpack_object *seq = proto_mp_map_get(p, "seq");
    const msgpack_object *meeting = proto_mp_map_get(p, "meeting");
    if (!str_is(meeting, t->meeting) || seq == NULL ||
        seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return 0;
    }
    int64_t s = (int64_t)seq->via.u64;
    if (s <= t->seq) {
        return 1; /* already reflected (a replay overlapping what we hold) */
    }
    int rc = 0;
    if (is_this_object(t, p)) {
        const msgpack_object *kind = proto_mp_map_get(p, "kind");
        if (str_is(kind, "text") && str_is(proto_mp_map_get(p, "field"), t->field)) {
            const msgpack_object *cid = proto_mp_map_get(p, "cid");
            /* Our own op, seen in a replay after a reconnect: it is acknowledged. */
            if (t->inflight && str_is(cid, t->inflight_cid)) {
                proto_op_free(&t->sent);
                t->inflight = false;
                t->acked++;
            } else {
                const msgpack_object *op = proto_mp_map_get(p, "op");
                rc = op ? remote_op(t, op) : PROTO_EINVAL;
            }
        } else if (str_is(kind, "update")) {
            const msgpack_object *ops = proto_mp_map_get(p, "ops");
            const msgpack_object *op = proto_mp_map_get(ops, t->field);
            if (op) {
                rc = remote_op(t, op);
            }
        } else if (str_is(kind, "delete")) {
            t->gone = true;
        }
    }
    t->seq = s;
    return rc < 0 ? rc : 1;
}

int cli_text_handle(struct cli_text *t, struct cli_conn *c, const struct cli_msg *m)
{
    if (m->kind == PROTO_RPC_NOTIFY) {
        if (m->method && strcmp(m->method, "event") == 0) {
            return handle_event(t, m->params);
        }
        return 0;
    }
    if (!t->inflight || m->msgid != t->inflight_msgid) {
        return 0;
    }
    t->inflight = false;
    proto_op_free(&t->sent);
    if (m->error) {
        snprintf(t->error, sizeof(t->error), "%s: %s", m->code ? m->code : "error",
                 m->message ? m->message : "");
        return PROTO_EINVAL;
    }
    const msgpack_object *seq = proto_mp_map_get(m->result, "seq");
    if (seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (int64_t)seq->via.u64 > t->seq) {
        /* Every event below this seq came before the response: we are at seq now. */
        t->seq = (int64_t)seq->via.u64;
    }
    t->acked++;
    int rc = cli_text_flush(t, c);
    return rc < 0 ? rc : 1;
}
