/* srv_share.h - the share methods of the live view (PROTOCOL.md section 14): links to a
 * read-only page of a meeting for people without an account. */
#ifndef CONFER_SRV_SHARE_H
#define CONFER_SRV_SHARE_H

#include <stddef.h>

struct srv;
struct srv_req;

/* Makes a share of meeting for user (the operator's demo: no request), durable with the
 * next batch; url gets its link as srv_live_url makes it. Returns 0, PROTO_ENOTFOUND (no
 * such meeting) or another PROTO_E* code. */
int srv_share_make(struct srv *srv, const char *meeting, const char *user, const char *label,
                   char *url, size_t cap);

void srv_share_create(struct srv_req *req);
void srv_share_list(struct srv_req *req);
void srv_share_revoke(struct srv_req *req);

#endif
