/* srv_rpc.c - request dispatch: one sorted method table with each method's role and
 * parameters, then the checks of PROTOCOL.md section 10 before the handler runs.
 *
 * A request is [0, msgid, method, params]. Checks run in this order: unauthenticated ->
 * malformed message or parameters (bad_request, srv_req_decode) -> not a member -> repeated
 * cid -> role (srv_req_enter) -> the handler (unknown object, locked, if_seq, ...).
 */
#include "srv_rpc.h"

#include "srv_auth.h"
#include "srv_held.h"
#include "srv_meeting.h"
#include "srv_presence.h"
#include "srv_req.h"
#include "srv_revert.h"
#include "srv_share.h"
#include "srv_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*srv_handler_fn)(struct srv_req *req);

#define M_PUBLIC  1 /* allowed before login */
#define M_MEETING 2 /* acts in the meeting of "meeting": srv_req_enter before the handler */

struct method {
    const char *name;
    srv_handler_fn fn;
    unsigned flags;
    enum srv_role role;         /* needed in the meeting (M_MEETING) */
    enum srv_role meeting_role; /* needed instead when type is "meeting" (NONE: role) */
    const char *no_meeting;     /* when set, type "meeting" is a bad_request with this text */
    const struct srv_param *params[SRV_PARAMS_MAX + 1]; /* NULL-terminated */
};

/* ---- parameters (PROTOCOL.md sections 7 and 10) ---- */

#define OFF(f) offsetof(struct srv_params, f)

static const char *const member_roles[] = {"viewer",     "editor",     "associate",
                                           "counsellor", "rapporteur", NULL};
static const char *const formats[] = {"text", "markdown", "html", NULL};
static const char *const import_modes[] = {"new", "merge", NULL};

static const struct srv_param P_MEETING = {
    .name = "meeting", .type = SRV_PT_STR, .off = OFF(meeting), .hint = "a meeting id (a string)"};
static const struct srv_param P_KNOWN = {.name = "known",
                                         .type = SRV_PT_MAP,
                                         .optional = true,
                                         .off = OFF(known),
                                         .hint = "a head seen earlier: {\"seq\", \"hash\"}"};
static const struct srv_param P_TYPE = {
    .name = "type",
    .type = SRV_PT_TYPE,
    .off = OFF(type),
    .hint = "meeting, session, item, doc, action, decision, interim or person"};
static const struct srv_param P_OBJID = {
    .name = "id",
    .type = SRV_PT_OBJID,
    .off = OFF(id),
    .hint = "an object id (an integer; the meeting's id for type meeting)"};
static const struct srv_param P_FIELDS = {.name = "fields",
                                          .type = SRV_PT_MAP,
                                          .off = OFF(fields),
                                          .hint = "a map of field names to values"};
static const struct srv_param P_IF_SEQ = {.name = "if_seq",
                                          .type = SRV_PT_INT,
                                          .optional = true,
                                          .off = OFF(if_seq),
                                          .hint = "an integer seq",
                                          .min = INT64_MIN,
                                          .max = INT64_MAX};
static const struct srv_param P_CID = {.name = "cid",
                                       .type = SRV_PT_CID,
                                       .optional = true,
                                       .off = OFF(cid),
                                       .hint = "a string of 1 to 64 bytes"};
static const struct srv_param P_TEXTFIELD = {
    .name = "field",
    .type = SRV_PT_TEXTFIELD,
    .off = OFF(field),
    .hint = "a text field of the type (meeting.abstract, item.body, action.text, decision.text)"};
static const struct srv_param P_BASE = {.name = "base",
                                        .type = SRV_PT_INT,
                                        .off = OFF(base),
                                        .hint = "the seq the text was read at (an integer)",
                                        .min = INT64_MIN,
                                        .max = INT64_MAX};
static const struct srv_param P_OP = {.name = "op",
                                      .type = SRV_PT_OP,
                                      .off = OFF(op),
                                      .hint = "a text op (skip n, insert str, {\"d\": n})"};
static const struct srv_param P_MEMBER = {
    .name = "user", .type = SRV_PT_NAME, .off = OFF(user), .hint = "an account name"};
static const struct srv_param P_ROLE = {.name = "role",
                                        .type = SRV_PT_ENUM,
                                        .off = OFF(role),
                                        .hint =
                                            "viewer, editor, associate, counsellor or rapporteur",
                                        .values = member_roles};
/* An ill-formed user name at login is an unknown user (same answer as a wrong password),
 * not a bad_request: any string is taken. */
static const struct srv_param P_LOGIN_USER = {
    .name = "user", .type = SRV_PT_STR, .off = OFF(user), .hint = "a string"};
static const struct srv_param P_PASSWORD = {
    .name = "password", .type = SRV_PT_STR, .off = OFF(password), .hint = "a string"};
static const struct srv_param P_REMEMBER = {.name = "remember",
                                            .type = SRV_PT_BOOL,
                                            .optional = true,
                                            .off = OFF(remember),
                                            .hint = "a boolean"};
static const struct srv_param P_TOKEN = {
    .name = "token", .type = SRV_PT_STR, .off = OFF(token), .hint = "a string"};
static const struct srv_param P_OLD = {
    .name = "old", .type = SRV_PT_STR, .off = OFF(old), .hint = "a string"};
static const struct srv_param P_NEW = {
    .name = "new", .type = SRV_PT_STR, .off = OFF(new_), .hint = "a string"};
/* 0 would read as "absent": an explicit at is a seq of the meeting. */
static const struct srv_param P_SHARE_LABEL = {.name = "label",
                                               .type = SRV_PT_STR,
                                               .optional = true,
                                               .off = OFF(label),
                                               .hint = "a string of at most 200 bytes",
                                               .max = DB_SHARE_LABEL_MAX};
static const struct srv_param P_SHARE_EXPIRES = {.name = "expires",
                                                 .type = SRV_PT_INT,
                                                 .optional = true,
                                                 .off = OFF(expires),
                                                 .hint = "an instant (ms since the epoch)",
                                                 .min = 1,
                                                 .max = INT64_MAX};
static const struct srv_param P_SHARE_ID = {.name = "id",
                                            .type = SRV_PT_INT,
                                            .off = OFF(id),
                                            .hint = "a share id (an integer)",
                                            .min = 1,
                                            .max = INT64_MAX};
static const struct srv_param P_AT = {.name = "at",
                                      .type = SRV_PT_INT,
                                      .optional = true,
                                      .off = OFF(at),
                                      .hint = "an integer seq from 1 to the meeting's seq",
                                      .min = 1,
                                      .max = INT64_MAX};
static const struct srv_param P_SINCE = {.name = "since",
                                         .type = SRV_PT_INT,
                                         .optional = true,
                                         .off = OFF(since),
                                         .hint = "an integer seq",
                                         .min = INT64_MIN,
                                         .max = INT64_MAX};
static const struct srv_param P_UNTIL = {.name = "until",
                                         .type = SRV_PT_INT,
                                         .optional = true,
                                         .off = OFF(until),
                                         .hint = "an integer seq",
                                         .min = INT64_MIN,
                                         .max = INT64_MAX};
static const struct srv_param P_LIMIT = {.name = "limit",
                                         .type = SRV_PT_INT,
                                         .optional = true,
                                         .off = OFF(limit),
                                         .hint = "an integer from 1 to 1000",
                                         .min = 1,
                                         .max = 1000};
static const struct srv_param P_HIST_USER = {.name = "user",
                                             .type = SRV_PT_STR,
                                             .optional = true,
                                             .off = OFF(user),
                                             .hint = "an account name",
                                             .max = PROTO_NAME_MAX};
static const struct srv_param P_HIST_TYPE = {.name = "type",
                                             .type = SRV_PT_STR,
                                             .optional = true,
                                             .off = OFF(type),
                                             .hint = "an object type",
                                             .max = 15};
static const struct srv_param P_HIST_ID = {.name = "id",
                                           .type = SRV_PT_ID,
                                           .optional = true,
                                           .off = OFF(id),
                                           .hint = "an object id",
                                           .max = PROTO_NAME_MAX};
static const struct srv_param P_FORMAT = {.name = "format",
                                          .type = SRV_PT_ENUM,
                                          .off = OFF(format),
                                          .hint = "text, markdown or html",
                                          .values = formats};
static const struct srv_param P_REPORT = {
    .name = "text", .type = SRV_PT_STR, .off = OFF(text), .hint = "the report text (a string)"};
static const struct srv_param P_MODE = {.name = "mode",
                                        .type = SRV_PT_ENUM,
                                        .optional = true,
                                        .off = OFF(mode),
                                        .hint = "new or merge",
                                        .values = import_modes};
static const struct srv_param P_WHERE = {.name = "where",
                                         .type = SRV_PT_WHERE,
                                         .off = OFF(where),
                                         .hint = "{\"type\", \"id\", \"field\"} or nil"};
static const struct srv_param P_NEW_ID = {.name = "id",
                                          .type = SRV_PT_NAME,
                                          .off = OFF(id),
                                          .hint = "a meeting id of 1-64 characters a-z 0-9 . _ -"};
static const struct srv_param P_RAPPORTEUR = {.name = "rapporteur",
                                              .type = SRV_PT_NAME,
                                              .off = OFF(rapporteur),
                                              .hint =
                                                  "the account name of the meeting's rapporteur"};

/* change.revert's seq has no slot of its own in srv_params: it lands in at's, which no
 * method takes beside it. The bounds 2 .. the meeting's seq are the handler's. */
static const struct srv_param P_REVERT_SEQ = {.name = "seq",
                                              .type = SRV_PT_INT,
                                              .off = OFF(at),
                                              .hint = "the seq of the change to undo",
                                              .min = INT64_MIN,
                                              .max = INT64_MAX};

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

/* Sorted by name: looked up with bsearch. Roles are PROTOCOL.md section 8's; for obj.* and
 * text.edit the role depends on the type (meeting_role). */
static const struct method methods[] = {
    {"agenda.get", srv_agenda_get, M_MEETING, SRV_ROLE_VIEWER, 0, NULL, {&P_MEETING}},
    {"audit.verify",
     srv_audit_verify_method,
     M_MEETING,
     SRV_ROLE_VIEWER,
     0,
     NULL,
     {&P_MEETING, &P_KNOWN}},
    {"auth.login", srv_auth_login, M_PUBLIC, 0, 0, NULL, {&P_LOGIN_USER, &P_PASSWORD, &P_REMEMBER}},
    {"auth.logout", srv_auth_logout, 0, 0, 0, NULL, {NULL}},
    {"auth.passwd", srv_auth_passwd, 0, 0, 0, NULL, {&P_OLD, &P_NEW}},
    {"auth.token", srv_auth_token, M_PUBLIC, 0, 0, NULL, {&P_LOGIN_USER, &P_TOKEN}},
    {"change.revert",
     srv_change_revert,
     M_MEETING,
     SRV_ROLE_VIEWER,
     0,
     NULL,
     {&P_MEETING, &P_REVERT_SEQ, &P_CID}},
    {"history.list",
     srv_history_list,
     M_MEETING,
     SRV_ROLE_VIEWER,
     0,
     NULL,
     {&P_MEETING, &P_SINCE, &P_UNTIL, &P_HIST_USER, &P_HIST_TYPE, &P_HIST_ID, &P_LIMIT}},
    /* The meeting's fields are parameters of their own: the handler reads them. */
    {"meeting.create", srv_meeting_create, 0, 0, 0, NULL, {&P_NEW_ID, &P_RAPPORTEUR}},
    {"meeting.get", srv_meeting_get, M_MEETING, SRV_ROLE_VIEWER, 0, NULL, {&P_MEETING, &P_AT}},
    {"meeting.list", srv_meeting_list, 0, 0, 0, NULL, {NULL}},
    {"meeting.subscribe",
     srv_meeting_subscribe,
     M_MEETING,
     SRV_ROLE_VIEWER,
     0,
     NULL,
     {&P_MEETING, &P_SINCE}},
    {"meeting.unsubscribe",
     srv_meeting_unsubscribe,
     M_MEETING,
     SRV_ROLE_VIEWER,
     0,
     NULL,
     {&P_MEETING}},
    {"member.list", srv_member_list, M_MEETING, SRV_ROLE_VIEWER, 0, NULL, {&P_MEETING}},
    {"member.remove",
     srv_member_remove,
     M_MEETING,
     SRV_ROLE_RAPPORTEUR,
     0,
     NULL,
     {&P_MEETING, &P_MEMBER, &P_CID}},
    {"member.set",
     srv_member_set,
     M_MEETING,
     SRV_ROLE_RAPPORTEUR,
     0,
     NULL,
     {&P_MEETING, &P_MEMBER, &P_ROLE, &P_CID}},
    {"obj.create",
     srv_obj_create,
     M_MEETING,
     SRV_ROLE_ASSOCIATE,
     SRV_ROLE_RAPPORTEUR,
     "meetings are created with meeting.create",
     {&P_MEETING, &P_TYPE, &P_FIELDS, &P_CID}},
    {"obj.delete",
     srv_obj_delete,
     M_MEETING,
     SRV_ROLE_ASSOCIATE,
     SRV_ROLE_RAPPORTEUR,
     "a meeting cannot be deleted",
     {&P_MEETING, &P_TYPE, &P_OBJID, &P_IF_SEQ, &P_CID}},
    {"obj.update",
     srv_obj_update,
     M_MEETING,
     SRV_ROLE_ASSOCIATE,
     SRV_ROLE_RAPPORTEUR,
     NULL,
     {&P_MEETING, &P_TYPE, &P_OBJID, &P_FIELDS, &P_IF_SEQ, &P_CID}},
    {"ping", do_ping, M_PUBLIC, 0, 0, NULL, {NULL}},
    {"presence.list", srv_presence_list, M_MEETING, SRV_ROLE_VIEWER, 0, NULL, {&P_MEETING}},
    {"presence.set", srv_presence_set, M_MEETING, SRV_ROLE_VIEWER, 0, NULL, {&P_MEETING, &P_WHERE}},
    {"report.export",
     srv_report_export_method,
     M_MEETING,
     SRV_ROLE_VIEWER,
     0,
     NULL,
     {&P_MEETING, &P_FORMAT, &P_AT}},
    {"report.import",
     srv_report_import_method,
     M_MEETING,
     SRV_ROLE_RAPPORTEUR,
     0,
     NULL,
     {&P_MEETING, &P_REPORT, &P_MODE}},
    {"share.create",
     srv_share_create,
     M_MEETING,
     SRV_ROLE_RAPPORTEUR,
     0,
     NULL,
     {&P_MEETING, &P_SHARE_LABEL, &P_SHARE_EXPIRES}},
    {"share.list", srv_share_list, M_MEETING, SRV_ROLE_RAPPORTEUR, 0, NULL, {&P_MEETING}},
    {"share.revoke",
     srv_share_revoke,
     M_MEETING,
     SRV_ROLE_RAPPORTEUR,
     0,
     NULL,
     {&P_MEETING, &P_SHARE_ID}},
    {"text.edit",
     srv_text_edit,
     M_MEETING,
     SRV_ROLE_EDITOR,
     SRV_ROLE_ASSOCIATE,
     NULL,
     {&P_MEETING, &P_TYPE, &P_OBJID, &P_TEXTFIELD, &P_BASE, &P_OP, &P_CID}},
    {"whoami", srv_auth_whoami, 0, 0, 0, NULL, {NULL}},
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

/* The parameter checks, then the meeting checks the table asks for. Answers and returns
 * false when one fails. */
static bool checks(struct srv_req *req, const struct method *me)
{
    if (!srv_req_decode(req, me->params)) {
        return false;
    }
    if (me->no_meeting && req->p.t == PROTO_T_MEETING) {
        srv_reply_bad(req, "type", me->no_meeting);
        return false;
    }
    if (!(me->flags & M_MEETING)) {
        return true;
    }
    bool by_type = me->meeting_role != SRV_ROLE_NONE && req->p.t == PROTO_T_MEETING;
    req->need = by_type ? me->meeting_role : me->role;
    return srv_req_enter(req, req->need);
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
    if (checks(&req, me)) {
        me->fn(&req);
    }
    srv_req_free(&req);
}
