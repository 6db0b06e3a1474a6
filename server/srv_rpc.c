/* srv_rpc.c - request dispatch: one sorted method table, central checks, replies.
 *
 * A request is [0, msgid, method, params]. Checks run in the order of PROTOCOL.md
 * section 10: unauthenticated -> malformed (bad_request) -> ... -> the handler.
 */
#include "srv.h"
#include "srv_held.h"
#include "srv_meeting.h"

#include <stdlib.h>
#include <string.h>

typedef void (*srv_handler_fn)(struct srv_req *req);

#define M_PUBLIC 1 /* allowed before login */

struct method {
    const char *name;
    srv_handler_fn fn;
    unsigned flags;
};

static void do_ping(struct srv_req *req)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 1);
    proto_pack_cstr(&pk, "time");
    msgpack_pack_int64(&pk, proto_now_ms());
    srv_reply_finish(req, &b);
}

/* Sorted by name: looked up with bsearch. */
static const struct method methods[] = {
    {"agenda.get", srv_agenda_get, 0},
    {"audit.verify", srv_audit_verify_method, 0},
    {"auth.login", srv_auth_login, M_PUBLIC},
    {"auth.logout", srv_auth_logout, 0},
    {"auth.passwd", srv_auth_passwd, 0},
    {"auth.token", srv_auth_token, M_PUBLIC},
    {"history.list", srv_history_list, 0},
    {"meeting.create", srv_meeting_create, 0},
    {"meeting.get", srv_meeting_get, 0},
    {"meeting.list", srv_meeting_list, 0},
    {"meeting.subscribe", srv_meeting_subscribe, 0},
    {"meeting.unsubscribe", srv_meeting_unsubscribe, 0},
    {"member.list", srv_member_list, 0},
    {"member.remove", srv_member_remove, 0},
    {"member.set", srv_member_set, 0},
    {"obj.create", srv_obj_create, 0},
    {"obj.delete", srv_obj_delete, 0},
    {"obj.update", srv_obj_update, 0},
    {"ping", do_ping, M_PUBLIC},
    {"presence.list", srv_presence_list, 0},
    {"presence.set", srv_presence_set, 0},
    {"report.export", srv_report_export_method, 0},
    {"report.import", srv_report_import_method, 0},
    {"text.edit", srv_text_edit, 0},
    {"whoami", srv_auth_whoami, 0},
};

struct key {
    const char *s;
    size_t len;
};

static int cmp_method(const void *k, const void *e)
{
    const struct key *key = k;
    const struct method *m = e;
    size_t n = strlen(m->name);
    size_t common = key->len < n ? key->len : n;
    /* An empty method may come with a NULL pointer (msgpack-c): memcmp must not see it. */
    int c = common > 0 ? memcmp(key->s, m->name, common) : 0;
    if (c != 0) {
        return c;
    }
    return key->len < n ? -1 : key->len > n ? 1 : 0;
}

static void send_reply(struct srv_req *req, const struct proto_buf *b)
{
    struct srv_conn *conn = req->conn;
    if (conn->unanswered > 0) {
        conn->unanswered--;
    }
    srv_held_send(conn, b->data, b->len, req->hold);
}

void srv_reply_error_data(struct srv_req *req, enum proto_code code, const char *message,
                          const char *data_key, int64_t data_value)
{
    struct proto_buf b = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, proto_buf_msgpack_write);
    proto_rpc_pack_error(&pk, req->msgid, code, message, data_key, data_value);
    send_reply(req, &b);
    proto_buf_free(&b, 0);
}

void srv_reply_error(struct srv_req *req, enum proto_code code, const char *message)
{
    srv_reply_error_data(req, code, message, NULL, 0);
}

void srv_reply_begin(struct srv_req *req, msgpack_packer *pk, struct proto_buf *buf)
{
    proto_buf_init(buf);
    msgpack_packer_init(pk, buf, proto_buf_msgpack_write);
    proto_rpc_pack_result(pk, req->msgid);
}

void srv_reply_finish(struct srv_req *req, struct proto_buf *buf)
{
    if (buf->len > PROTO_SEND_MAX) {
        proto_buf_free(buf, 0);
        srv_reply_error(req, PROTO_CODE_TOO_LARGE, "response over 16 MiB");
        return;
    }
    send_reply(req, buf);
    proto_buf_free(buf, 0);
}

void srv_reply_empty(struct srv_req *req)
{
    struct proto_buf b;
    msgpack_packer pk;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, 0);
    srv_reply_finish(req, &b);
}

void srv_rpc_handle(struct srv_conn *conn, const msgpack_object *msg)
{
    struct proto_rpc_msg m;
    struct srv_req req = {.conn = conn, .msgid = 0, .params = NULL};
    int rc = proto_rpc_decode(msg, &m);
    conn->unanswered++;
    req.msgid = m.msgid;
    if (rc != 0) {
        srv_log(conn, SRV_LOG_INFO, "malformed message (msgid %u)", (unsigned)m.msgid);
        srv_reply_error(&req, PROTO_CODE_BAD_REQUEST, "malformed message: expected a request");
        return;
    }
    if (m.kind != PROTO_RPC_REQUEST) {
        srv_reply_error(&req, PROTO_CODE_BAD_REQUEST,
                        "malformed message: clients send requests only");
        return;
    }
    req.params = m.params;
    struct key k = {m.method, m.method_len};
    const struct method *me =
        bsearch(&k, methods, sizeof(methods) / sizeof(methods[0]), sizeof(methods[0]), cmp_method);
    bool authed = conn->state == SRV_CONN_READY;
    if (!authed && (me == NULL || !(me->flags & M_PUBLIC))) {
        srv_reply_error(&req, PROTO_CODE_UNAUTHENTICATED, "log in first");
        return;
    }
    if (me == NULL) {
        srv_reply_error(&req, PROTO_CODE_NOT_FOUND, "no such method");
        return;
    }
    me->fn(&req);
}
