/* srv_auth.h - the auth methods (PROTOCOL.md section 5) and the password functions the
 * operator commands share: presets, checks, hashing (srv_auth.c). */
#ifndef CONFER_SRV_AUTH_H
#define CONFER_SRV_AUTH_H

#include "srv_base.h"

struct srv_req;

/* Reads the Argon2id limits of a cost preset. */
void srv_pwcost_limits(enum srv_pwcost cost, unsigned long long *ops, size_t *mem);

/* Parses "interactive", "moderate" or "min"; returns 0 or PROTO_EINVAL. */
int srv_pwcost_parse(const char *s, enum srv_pwcost *out);

void srv_auth_login(struct srv_req *req);
void srv_auth_token(struct srv_req *req);
void srv_auth_logout(struct srv_req *req);
void srv_auth_passwd(struct srv_req *req);
void srv_auth_whoami(struct srv_req *req);

/* Checks that a new password is valid UTF-8 of the configured length. Returns true when it
 * is fine, else false with a message for the user in msg. */
bool srv_password_check(const struct srv_config *cfg, const char *pw, size_t len, char *msg,
                        size_t msgsz);

/* Makes a hash string that no password matches with the same algorithm and Argon2
 * parameters as stored (a crypto_pwhash_str string): checking it costs what checking
 * stored does. Returns 0, or PROTO_EINVAL when stored is not such a string. */
int srv_pwhash_dummy_like(const char *stored, char out[DB_PWHASH_MAX]);

/* The hash an unknown user's password is checked against: a dummy like the stored hash
 * of an account of db (so the check takes as long as for a known user), else fallback. */
void srv_auth_unknown_hash(struct db *db, const char *fallback, char out[DB_PWHASH_MAX]);

/* Hashes a password with crypto_pwhash_str at the given cost (blocking: call it off the
 * loop). Returns 0 or PROTO_ENOMEM. */
int srv_password_hash(enum srv_pwcost cost, const char *pw, size_t len, char out[DB_PWHASH_MAX]);

#endif
