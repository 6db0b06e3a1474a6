/* srv_presence.c - who is where in a meeting: presence.set / presence.list and the
 * `presence` notifications (join, move, leave), one presence per subscribed connection. */
#include "srv_hub.h"
#include "srv_req.h"

#include <string.h>

static struct srv_sub *find_sub(struct srv_meeting *m, struct srv_conn *conn)
{
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        if (s->conn == conn) {
            return s;
        }
    }
    return NULL;
}

static void pack_where(msgpack_packer *pk, const struct srv_sub *s)
{
    if (!s->present) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, s->where_field[0] ? 3 : 2);
    proto_pack_cstr(pk, "type");
    proto_pack_cstr(pk, s->where_type);
    proto_pack_cstr(pk, "id");
    if (s->where_id_str[0]) {
        proto_pack_cstr(pk, s->where_id_str);
    } else {
        msgpack_pack_int64(pk, s->where_id);
    }
    if (s->where_field[0]) {
        proto_pack_cstr(pk, "field");
        proto_pack_cstr(pk, s->where_field);
    }
}

/* presence {"meeting", "user", "where", "state"} to every other subscribed connection. */
static void notify(struct srv_meeting *m, const struct srv_sub *from, const char *state)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    proto_rpc_pack_notify(&pk, "presence");
    msgpack_pack_map(&pk, 4);
    proto_pack_cstr(&pk, "meeting");
    proto_pack_cstr(&pk, m->rec->id);
    proto_pack_cstr(&pk, "user");
    proto_pack_cstr(&pk, from->conn->user);
    proto_pack_cstr(&pk, "where");
    pack_where(&pk, from);
    proto_pack_cstr(&pk, "state");
    proto_pack_cstr(&pk, state);
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        if (s != from) {
            srv_held_send(s->conn, b.data, b.len, 0);
        }
    }
    proto_buf_free(&b, 0);
}

void srv_presence_leave(struct srv_meeting *m, struct srv_sub *sub)
{
    if (!sub->present) {
        return;
    }
    sub->present = false;
    notify(m, sub, "leave");
}

void srv_presence_set(struct srv_req *req)
{
    const struct srv_where *w = &req->p.wh;
    bool leave = !w->present;
    struct srv_meeting *m = req->m;
    struct srv_sub *s = find_sub(m, req->conn);
    if (s == NULL) {
        srv_reply_error(req, PROTO_CODE_BAD_REQUEST,
                        "not subscribed to this meeting: call meeting.subscribe first");
        return;
    }
    if (leave) {
        srv_presence_leave(m, s);
    } else {
        const char *state = s->present ? "move" : "join";
        if (!s->present) {
            s->present_since = proto_now_ms();
        }
        s->present = true;
        snprintf(s->where_type, sizeof(s->where_type), "%s", w->type);
        snprintf(s->where_id_str, sizeof(s->where_id_str), "%s", w->id_str);
        snprintf(s->where_field, sizeof(s->where_field), "%s", w->field);
        s->where_id = w->id;
        notify(m, s, state);
    }
    srv_reply_empty(req);
}

void srv_presence_list(struct srv_req *req)
{
    struct srv_meeting *m = req->m;
    size_t n = 0;
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        n += s->present;
    }
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_array(&pk, n);
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        if (!s->present) {
            continue;
        }
        msgpack_pack_map(&pk, 3);
        proto_pack_cstr(&pk, "user");
        proto_pack_cstr(&pk, s->conn->user);
        proto_pack_cstr(&pk, "where");
        pack_where(&pk, s);
        proto_pack_cstr(&pk, "since");
        msgpack_pack_int64(&pk, s->present_since);
    }
    srv_reply_finish(req, &b);
}
