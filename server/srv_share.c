/* srv_share.c - share.create, share.list and share.revoke (PROTOCOL.md section 14).
 *
 * A share is a change of the meeting (type "share", kinds create and delete, audited, never
 * carrying the token) whose row in the shares table is written in the same transaction
 * (srv_hub_add_write). Only the BLAKE2b hash of the token is stored; the token is returned
 * once. A share takes effect for pages once it is durable; a revoke stops its pages at once.
 */
#include "srv_share.h"

#include "proto_err.h"
#include "srv_hub.h"
#include "srv_live.h"
#include "srv_req.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A share on its way to the database. */
struct share_write {
    struct srv *srv;
    struct db_share s;
    bool revoke;
    int64_t now;
};

static int share_work(struct db *db, void *ud)
{
    struct share_write *w = ud;
    return w->revoke ? db_share_revoke(db, w->s.meeting, w->s.id, w->now) : db_share_add(db, &w->s);
}

static void share_done(void *ud, int rc)
{
    struct share_write *w = ud;
    if (rc == 0 && !w->revoke && w->srv->live != NULL && srv_live_share_add(w->srv, &w->s) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "share %lld of %s: out of memory (it works after a restart)",
                (long long)w->s.id, w->s.meeting);
    }
    sodium_memzero(w, sizeof(*w));
    free(w);
}

/* Commits the share change (kind, with its payload packed by the caller into ch) and queues
 * its row; answers an error and returns a negative seq when it could not. */
static int64_t commit_share(struct srv_req *req, struct srv_change *ch, struct share_write *w)
{
    struct srv *srv = req->conn->srv;
    int64_t seq = srv_hub_commit(srv, ch);
    if (seq < 0) {
        free(w);
        srv_reply_error(req, seq == PROTO_EDB ? PROTO_CODE_UNAVAILABLE : PROTO_CODE_INTERNAL,
                        "the share could not be recorded: try again later");
        return seq;
    }
    if (srv_hub_add_write(srv, req->m->rec->id, share_work, share_done, w) != 0) {
        /* The entry is in the batch, the row is not: the batch cannot be trusted. */
        srv_log(req->conn, SRV_LOG_ERROR, "share %lld: out of memory queueing its row",
                (long long)w->s.id);
        free(w);
    }
    req->hold = srv_hub_hold(srv, req->m);
    return seq;
}

/* Commits a new share of m made by user (the change's author conn, may be NULL) and queues
 * its row: token gets the token (SRV_SHARE_TOKEN_CHARS + 1 bytes, wipe it). Returns the
 * share's id, or a negative PROTO_E* code (nothing was committed). */
static int64_t make_share(struct srv *srv, struct srv_meeting *m, struct srv_change *ch,
                          msgpack_packer *pk, const char *label, size_t label_len, int64_t expires,
                          char *token)
{
    uint8_t raw[SRV_SHARE_TOKEN_BYTES];
    int64_t id = srv_hub_next_id(srv);
    if (id < 0) {
        proto_buf_free(&ch->payload, 0);
        return id;
    }
    struct share_write *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        proto_buf_free(&ch->payload, 0);
        return PROTO_ENOMEM;
    }
    w->srv = srv;
    w->s.id = id;
    snprintf(w->s.meeting, sizeof(w->s.meeting), "%s", m->rec->id);
    snprintf(w->s.user, sizeof(w->s.user), "%s", ch->user);
    snprintf(w->s.label, sizeof(w->s.label), "%.*s", (int)label_len, label ? label : "");
    w->s.created_ms = proto_now_ms();
    w->s.expires_ms = expires;
    randombytes_buf(raw, sizeof(raw));
    crypto_generichash(w->s.hash, sizeof(w->s.hash), raw, sizeof(raw), NULL, 0);
    sodium_bin2base64(token, SRV_SHARE_TOKEN_CHARS + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));

    ch->type_name = "share";
    ch->id = id;
    msgpack_pack_map(pk, 2);
    proto_pack_cstr(pk, "label");
    proto_pack_cstr(pk, w->s.label);
    proto_pack_cstr(pk, "expires");
    expires ? msgpack_pack_int64(pk, expires) : msgpack_pack_nil(pk);
    int64_t seq = srv_hub_commit(srv, ch);
    if (seq < 0) {
        free(w);
        sodium_memzero(token, SRV_SHARE_TOKEN_CHARS + 1);
        return seq;
    }
    if (srv_hub_add_write(srv, m->rec->id, share_work, share_done, w) != 0) {
        srv_log(NULL, SRV_LOG_ERROR, "share %lld: out of memory queueing its row", (long long)id);
        free(w);
    }
    return id;
}

int srv_share_make(struct srv *srv, const char *meeting, const char *user, const char *label,
                   char *url, size_t cap)
{
    char token[SRV_SHARE_TOKEN_CHARS + 1], path[3 + SRV_SHARE_TOKEN_CHARS + 1];
    struct srv_meeting *m = srv_hub_find(srv, meeting, strlen(meeting));
    if (m == NULL) {
        return PROTO_ENOTFOUND;
    }
    struct srv_change ch = {.m = m, .user = user, .kind = "create", .type = PROTO_T_COUNT};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ch.payload, proto_buf_msgpack_write);
    int64_t id = make_share(srv, m, &ch, &pk, label, strlen(label), 0, token);
    if (id < 0) {
        return (int)id;
    }
    snprintf(path, sizeof(path), "/v/%s", token);
    srv_live_url(srv, path, url, cap);
    sodium_memzero(token, sizeof(token));
    sodium_memzero(path, sizeof(path));
    return 0;
}

void srv_share_create(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    struct srv_meeting *m = req->m;
    int64_t now = proto_now_ms();
    char token[SRV_SHARE_TOKEN_CHARS + 1], path[3 + SRV_SHARE_TOKEN_CHARS + 1], url[1024];

    if (req->p.expires.set && req->p.expires.i <= now) {
        srv_reply_bad(req, "expires", "must be an instant in the future (ms since the epoch)");
        return;
    }
    int64_t expires = req->p.expires.set ? req->p.expires.i : 0;
    struct srv_change ch;
    msgpack_packer pk;
    srv_req_change_begin(req, m, "create", PROTO_T_COUNT, &ch, &pk);
    int64_t id = make_share(srv, m, &ch, &pk, req->p.label.s,
                            req->p.label.set ? req->p.label.len : 0, expires, token);
    if (id < 0) {
        srv_reply_error(req, id == PROTO_EDB ? PROTO_CODE_UNAVAILABLE : PROTO_CODE_INTERNAL,
                        "the share could not be recorded: try again later");
        return;
    }
    req->hold = srv_hub_hold(srv, m);

    snprintf(path, sizeof(path), "/v/%s", token);
    srv_live_url(srv, path, url, sizeof(url));
    struct proto_buf b;
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_map(&pk, url[0] ? 5 : 4);
    proto_pack_cstr(&pk, "id");
    msgpack_pack_int64(&pk, id);
    proto_pack_cstr(&pk, "token");
    proto_pack_cstr(&pk, token);
    proto_pack_cstr(&pk, "path");
    proto_pack_cstr(&pk, path);
    proto_pack_cstr(&pk, "expires");
    expires ? msgpack_pack_int64(&pk, expires) : msgpack_pack_nil(&pk);
    if (url[0]) {
        proto_pack_cstr(&pk, "url");
        proto_pack_cstr(&pk, url);
    }
    sodium_memzero(token, sizeof(token));
    sodium_memzero(path, sizeof(path));
    sodium_memzero(url, sizeof(url));
    srv_reply_finish(req, &b);
}

struct list_ctx {
    msgpack_packer *pk;
    size_t n;
};

static void count_share(void *ud, const struct db_share *s)
{
    ((struct list_ctx *)ud)->n++;
}

static void pack_share(void *ud, const struct db_share *s)
{
    msgpack_packer *pk = ((struct list_ctx *)ud)->pk;
    msgpack_pack_map(pk, 5);
    proto_pack_cstr(pk, "id");
    msgpack_pack_int64(pk, s->id);
    proto_pack_cstr(pk, "label");
    proto_pack_cstr(pk, s->label);
    proto_pack_cstr(pk, "user");
    proto_pack_cstr(pk, s->user);
    proto_pack_cstr(pk, "created");
    msgpack_pack_int64(pk, s->created_ms);
    proto_pack_cstr(pk, "expires");
    s->expires_ms ? msgpack_pack_int64(pk, s->expires_ms) : msgpack_pack_nil(pk);
}

void srv_share_list(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    int64_t now = proto_now_ms();
    struct proto_buf b;
    msgpack_packer pk;
    struct list_ctx ctx = {.pk = &pk};
    srv_live_share_each(srv, req->m->rec->id, now, count_share, &ctx);
    srv_reply_begin(req, &pk, &b);
    msgpack_pack_array(&pk, ctx.n);
    srv_live_share_each(srv, req->m->rec->id, now, pack_share, &ctx);
    srv_reply_finish(req, &b);
}

void srv_share_revoke(struct srv_req *req)
{
    struct srv *srv = req->conn->srv;
    struct srv_meeting *m = req->m;
    int64_t now = proto_now_ms();
    int64_t id = req->p.id.i;
    if (srv_live_share_find(srv, m->rec->id, id, now) == NULL) {
        srv_reply_error(req, PROTO_CODE_NOT_FOUND,
                        "no such share (revoked or expired already?): confer share list shows "
                        "them");
        return;
    }
    struct share_write *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return;
    }
    w->srv = srv;
    w->revoke = true;
    w->now = now;
    w->s.id = id;
    snprintf(w->s.meeting, sizeof(w->s.meeting), "%s", m->rec->id);
    struct srv_change ch;
    msgpack_packer pk;
    srv_req_change_begin(req, m, "delete", PROTO_T_COUNT, &ch, &pk);
    ch.type_name = "share";
    ch.id = id;
    msgpack_pack_map(&pk, 0);
    if (commit_share(req, &ch, w) < 0) {
        return;
    }
    /* Its pages stop now: a revoke that fails to be written is answered unavailable and
     * the link works again only after a restart, never the other way round. */
    srv_live_share_revoke(srv, m->rec->id, id);
    srv_reply_empty(req);
}
