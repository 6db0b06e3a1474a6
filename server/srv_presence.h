/* srv_presence.h - the presence methods (PROTOCOL.md section 7): who is where in a
 * meeting (srv_presence.c; the state lives in the hub's subscribers). */
#ifndef CONFER_SRV_PRESENCE_H
#define CONFER_SRV_PRESENCE_H

struct srv_req;

void srv_presence_set(struct srv_req *req);
void srv_presence_list(struct srv_req *req);

#endif
