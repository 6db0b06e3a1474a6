/* srv_share.h - the share methods of the live view (PROTOCOL.md section 14): links to a
 * read-only page of a meeting for people without an account. */
#ifndef CONFER_SRV_SHARE_H
#define CONFER_SRV_SHARE_H

struct srv_req;

void srv_share_create(struct srv_req *req);
void srv_share_list(struct srv_req *req);
void srv_share_revoke(struct srv_req *req);

#endif
