/* srv_live.h - the live view (PROTOCOL.md section 14): share links, the page of a meeting,
 * and its live stream, served over srv_http.h on the server's loop.
 *
 * The live view listens to the hub for durable changes (srv_hub_listen) and keeps, per
 * meeting, a record of its own that holds only what is durable: a page shows what a
 * subscriber is told, never a change that could still be lost. The page and every update
 * of it are the HTML export's sections (srv_report_html_sections), rendered once per
 * meeting and sent to every page of it.
 */
#ifndef CONFER_SRV_LIVE_H
#define CONFER_SRV_LIVE_H

#include "db.h"
#include "srv_base.h"

#define SRV_SHARE_TOKEN_BYTES 32
#define SRV_SHARE_TOKEN_CHARS 43 /* unpadded base64url of 32 bytes */

/* Makes srv->live: loads the shares from the database and, when cfg.http_port >= 0,
 * listens to the hub for durable changes (call before srv_hub_load). Returns 0 or
 * PROTO_ENOMEM / PROTO_EDB. */
int srv_live_init(struct srv *srv);

/* Starts serving HTTP on cfg.http_host:http_port (when http_port >= 0). Returns 0 or
 * PROTO_EIO after logging why. */
int srv_live_start(struct srv *srv);

/* Stops serving: every page is closed; the closes finish on the loop. */
void srv_live_stop(struct srv *srv);

/* Frees srv->live (after the loop has run down). */
void srv_live_free(struct srv *srv);

/* The HTTP port served (-1 when off). */
int srv_live_port(const struct srv *srv);

/* The link of a share path ("/v/TOKEN") as the server's setting makes it: the base URL
 * given, else http://HOST:PORT when serving, else "" (out gets at most cap bytes). */
void srv_live_url(const struct srv *srv, const char *path, char *out, size_t cap);

/* A share now durable: pages may open it. The share is copied. Returns 0 or PROTO_ENOMEM. */
int srv_live_share_add(struct srv *srv, const struct db_share *s);

/* Finds a live share of meeting by id (neither revoked nor expired at now_ms); NULL when
 * none. */
const struct db_share *srv_live_share_find(struct srv *srv, const char *meeting, int64_t id,
                                           int64_t now_ms);

/* Revokes a share in memory: its link answers 404 from now on and its open pages are told
 * and closed at once. */
void srv_live_share_revoke(struct srv *srv, const char *meeting, int64_t id);

/* Calls cb for every live share of meeting (neither revoked nor expired at now_ms). */
void srv_live_share_each(struct srv *srv, const char *meeting, int64_t now_ms,
                         void (*cb)(void *ud, const struct db_share *s), void *ud);

#endif
