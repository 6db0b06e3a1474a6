/* srv_presence.c - who is where in a meeting: presence.set / presence.list, one presence per
 * subscribed connection. The state and the `presence` notifications (join, move, leave)
 * live in the hub, which also ends a presence when its subscriber goes. */
#include "srv_presence.h"

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
        srv_hub_presence_leave(m, s);
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
        srv_hub_presence_notify(m, s, state);
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
        srv_hub_pack_where(&pk, s);
        proto_pack_cstr(&pk, "since");
        msgpack_pack_int64(&pk, s->present_since);
    }
    srv_reply_finish(req, &b);
}
