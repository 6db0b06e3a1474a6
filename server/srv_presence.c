/* srv_presence.c - who is where in a meeting: presence.set / presence.list, one presence per
 * subscribed connection, with a cursor in a text field (PROTOCOL.md section 11). The state
 * and the `presence` notifications (join, move, leave) live in the hub, which also ends a
 * presence when its subscriber goes and moves the cursors with every op of their field. */
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

/* A cursor as presence.set gives it, carried from the text at base to the current one. */
struct cursor {
    bool set;
    enum proto_type t;
    int field;
    int64_t pos, anchor, base;
    int64_t grown;  /* code points the field gained after base (negative: lost) */
    bool measuring; /* the first walk over the ops measures, the second one moves */
};

static int cursor_step(void *ud, const struct proto_op *op)
{
    struct cursor *c = ud;
    if (c->measuring) {
        for (size_t i = 0; i < op->len; i++) {
            if (op->comps[i].kind == PROTO_OP_INSERT) {
                c->grown += (int64_t)op->comps[i].n;
            } else if (op->comps[i].kind == PROTO_OP_DELETE) {
                c->grown -= (int64_t)op->comps[i].n;
            }
        }
    } else {
        c->pos = (int64_t)proto_op_transform_pos((size_t)c->pos, op);
        c->anchor = (int64_t)proto_op_transform_pos((size_t)c->anchor, op);
    }
    return 0;
}

/* True when the text of v has at least n code points. Cursors come with every keystroke:
 * the count stops at n, and is skipped when the byte length alone decides (a code point
 * is 1 to 4 bytes). */
static bool text_reaches(const struct srv_val *v, int64_t n)
{
    size_t len = v->set && v->s ? v->len : 0;
    if (n <= 0 || (uint64_t)n <= len / 4) {
        return true;
    }
    if ((uint64_t)n > len) {
        return false;
    }
    int64_t count = 0;
    for (size_t i = 0; i < len && count < n; i++) {
        count += ((unsigned char)v->s[i] & 0xc0) != 0x80;
    }
    return count >= n;
}

/* An integer key of where: 0, 1 when absent, -1 when it is not an integer. */
static int where_int(const struct srv_req *req, const char *key, int64_t *out)
{
    int rc = proto_param_i64(req->p.where.o, key, out);
    return rc == 0 ? 0 : rc == PROTO_ENOTFOUND ? 1 : -1;
}

/* Reads where's pos, anchor and base (when given) and carries them over the field's ops
 * after base to the meeting's seq. Returns false when it answered an error. */
static bool cursor_read(struct srv_req *req, struct srv_meeting *m, struct cursor *c)
{
    const struct srv_where *w = &req->p.wh;
    memset(c, 0, sizeof(*c));
    int has_pos = where_int(req, "pos", &c->pos);
    int has_anchor = where_int(req, "anchor", &c->anchor);
    if (has_pos == -1 || (has_pos == 0 && c->pos < 0)) {
        srv_reply_bad(req, "where.pos", "must be a code point offset (an integer, at least 0)");
        return false;
    }
    if (has_anchor == -1 || (has_anchor == 0 && c->anchor < 0)) {
        srv_reply_bad(req, "where.anchor", "must be a code point offset (an integer, at least 0)");
        return false;
    }
    if (has_pos == 1 && has_anchor == 1) {
        return true; /* no cursor */
    }
    if (has_pos == 1) {
        srv_reply_bad(req, "where.pos", "required with anchor");
        return false;
    }
    if (has_anchor == 1) {
        c->anchor = c->pos;
    }
    int has_base = where_int(req, "base", &c->base);
    if (has_base != 0) {
        srv_reply_bad(req, "where.base",
                      has_base == 1 ? "required with pos (the seq the text was read at)"
                                    : "must be the seq the text was read at (an integer)");
        return false;
    }
    c->t = proto_type_find(w->type, strlen(w->type));
    c->field = w->field[0] ? proto_field_find(c->t, w->field, strlen(w->field)) : -1;
    if (c->field < 0 || proto_type_info(c->t)->fields[c->field].kind != PROTO_F_TEXT) {
        srv_reply_bad(req, "where.field", "a text field of the type is required with pos");
        return false;
    }
    struct srv_obj *o = srv_rec_find(m->rec, c->t, c->t == PROTO_T_MEETING ? 0 : w->id);
    if (o == NULL || (c->t == PROTO_T_MEETING && strcmp(w->id_str, m->rec->id) != 0)) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND, "no such object in this meeting");
        return false;
    }
    if (c->base < 0 || c->base > m->rec->seq || (o->created > 0 && c->base < o->created)) {
        srv_reply_bad(req, "where.base", "older than the object or newer than the meeting's seq");
        return false;
    }
    /* Reading the log for a base older than the window is left to text.edit: a cursor that
     * old is stale anyway, and the client sends a new one once it has caught up. */
    c->measuring = true;
    int rc = srv_hub_field_ops(m, c->t, o->id, c->field, c->base, cursor_step, c);
    if (rc == 1) {
        srv_reply_error(req, PROTO_CODE_CONFLICT,
                        "where.base: older than the server's window of recent ops: send the "
                        "cursor again at a newer base");
        return false;
    }
    if (rc != 0) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "cannot read the field's recent ops");
        return false;
    }
    int64_t far = c->pos > c->anchor ? c->pos : c->anchor;
    if (!text_reaches(&o->f[c->field], far + c->grown)) {
        srv_reply_bad(req, c->pos == far ? "where.pos" : "where.anchor",
                      "past the end of the text at base");
        return false;
    }
    c->measuring = false;
    if (srv_hub_field_ops(m, c->t, o->id, c->field, c->base, cursor_step, c) != 0) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "cannot read the field's recent ops");
        return false;
    }
    c->set = true;
    return true;
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
    struct cursor c = {0};
    if (!leave && !cursor_read(req, m, &c)) {
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
        s->has_cursor = c.set;
        s->cursor_type = c.t;
        s->cursor_field = c.field;
        s->pos = (size_t)c.pos;
        s->anchor = (size_t)c.anchor;
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
    /* The positions refer to the meeting's seq: the answer waits for its events. */
    req->hold = srv_hub_hold(req->conn->srv, m);
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_array(&pk, n);
    for (struct srv_sub *s = m->subs; s; s = s->next) {
        if (!s->present) {
            continue;
        }
        msgpack_pack_map(&pk, 4);
        proto_pack_cstr(&pk, "user");
        proto_pack_cstr(&pk, s->conn->user);
        proto_pack_cstr(&pk, "where");
        srv_hub_pack_where(&pk, s);
        proto_pack_cstr(&pk, "since");
        msgpack_pack_int64(&pk, s->present_since);
        proto_pack_cstr(&pk, "seq");
        msgpack_pack_int64(&pk, m->rec->seq);
    }
    srv_reply_finish(req, &b);
}
