/* srv_data.h - the data folder (srv_data.c): making it, its host key, its database.
 *
 * The *_why functions say why they failed: each writes into why (cap bytes; may be NULL)
 * one line for the operator: what failed, on which path, the system's or SQLite's reason,
 * and what to do. The plain srv_data_* are these without the message.
 */
#ifndef CONFER_SRV_DATA_H
#define CONFER_SRV_DATA_H

#include <stddef.h>

#include "db.h"
#include "proto_channel.h"

/* Makes a data folder: directory 0700, host key and database 0600. Returns 0,
 * PROTO_ECONFLICT when it already holds a database, or PROTO_EIO. */
int srv_data_init(const char *dir, char fingerprint[PROTO_FINGERPRINT_LEN]);

/* Loads the host key of a data folder. Returns 0, PROTO_ENOTFOUND, PROTO_EIO or
 * PROTO_EPERM (the key file is readable by others). */
int srv_data_load_key(const char *dir, struct proto_hostkey *key);

/* Opens the database of a data folder. */
int srv_data_open_db(const char *dir, struct db **out);

/* Makes a data folder as srv_data_init does. Returns 0, PROTO_ECONFLICT when the folder
 * already holds a database or host key, PROTO_EIO or PROTO_EDB. */
int srv_data_init_why(const char *dir, char fingerprint[PROTO_FINGERPRINT_LEN], char *why,
                      size_t cap);

/* Loads the host key as srv_data_load_key does (same return codes); on failure the key is
 * wiped and why names the folder or key file and the fix (a mode others can read, an
 * owner other than the running user, a wrong size). */
int srv_data_load_key_why(const char *dir, struct proto_hostkey *key, char *why, size_t cap);

/* Opens the database of a data folder read-write (see db_open_why: a read-only file, an
 * unwritable -wal or -shm, or an unwritable folder fail here). *out is the caller's. */
int srv_data_open_db_why(const char *dir, struct db **out, char *why, size_t cap);

/* Everything conferd serve needs from its folder before it starts: the folder, the host
 * key, and a database it can write (opened, migrated, probed and closed again). */
int srv_data_check(const char *dir, char *why, size_t cap);

/* Takes the folder's serve lock (DIR/serve.lock, flock): one conferd serves a folder, and
 * the operator tool tells a stopped server from a running one. *fd holds it until
 * srv_data_unlock (or the process ends). Returns 0, PROTO_ECONFLICT when a running
 * process holds it, PROTO_EIO. */
int srv_data_lock(const char *dir, int *fd);
void srv_data_unlock(int fd);

#endif
