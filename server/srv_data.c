/* srv_data.c - the data folder: host key and database, with their permissions.
 *
 *   DIR/            0700
 *   DIR/host.key    0600  the Ed25519 secret key, 64 raw bytes
 *   DIR/confer.db   0600  SQLite (WAL: -wal and -shm beside it, 0600 too)
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

int srv_data_init(const char *dir, char fingerprint[PROTO_FINGERPRINT_LEN])
{
    char path[4096];
    struct proto_hostkey key;
    int rc = 0;
    int fd = -1;
    struct db *db = NULL;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return PROTO_EIO;
    }
    if (chmod(dir, 0700) != 0) {
        return PROTO_EIO;
    }
    join(path, sizeof(path), dir, SRV_DB_FILE);
    if (access(path, F_OK) == 0) {
        return PROTO_ECONFLICT;
    }
    join(path, sizeof(path), dir, SRV_HOSTKEY_FILE);
    if (access(path, F_OK) == 0) {
        return PROTO_ECONFLICT;
    }
    if ((rc = proto_hostkey_generate(&key)) != 0) {
        goto cleanup;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        rc = PROTO_EIO;
        goto cleanup;
    }
    if (write(fd, key.sk, sizeof(key.sk)) != (ssize_t)sizeof(key.sk) || fsync(fd) != 0) {
        rc = PROTO_EIO;
        goto cleanup;
    }
    join(path, sizeof(path), dir, SRV_DB_FILE);
    if ((rc = db_open(&db, path, DB_CREATE)) != 0) {
        goto cleanup;
    }
    proto_fingerprint(key.pk, fingerprint);
cleanup:
    if (fd >= 0) {
        close(fd);
    }
    db_close(db);
    sodium_memzero(&key, sizeof(key));
    return rc;
}

int srv_data_load_key(const char *dir, struct proto_hostkey *key)
{
    char path[4096];
    struct stat st;
    int rc = 0;
    join(path, sizeof(path), dir, SRV_HOSTKEY_FILE);
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) {
        return errno == ENOENT ? PROTO_ENOTFOUND : PROTO_EIO;
    }
    if (fstat(fd, &st) != 0) {
        rc = PROTO_EIO;
        goto cleanup;
    }
    if ((st.st_mode & 077) != 0) {
        rc = PROTO_EPERM; /* a host key others can read is no longer secret */
        goto cleanup;
    }
    if (st.st_size != (off_t)sizeof(key->sk) ||
        read(fd, key->sk, sizeof(key->sk)) != (ssize_t)sizeof(key->sk)) {
        rc = PROTO_EIO;
        goto cleanup;
    }
    /* An Ed25519 secret key from libsodium ends with its public key. */
    if (crypto_sign_ed25519_sk_to_pk(key->pk, key->sk) != 0) {
        rc = PROTO_EIO;
    }
cleanup:
    close(fd);
    if (rc != 0) {
        sodium_memzero(key, sizeof(*key));
    }
    return rc;
}

int srv_data_open_db(const char *dir, struct db **out)
{
    char path[4096];
    join(path, sizeof(path), dir, SRV_DB_FILE);
    return db_open(out, path, 0);
}
