/* srv_data.c - the data folder: host key and database, with their permissions.
 *
 *   DIR/            0700
 *   DIR/host.key    0600  the Ed25519 secret key, 64 raw bytes
 *   DIR/confer.db   0600  SQLite (WAL: -wal and -shm beside it, 0600 too)
 *
 * Every failure is explained for the operator who starts conferd: the path, the system's
 * reason and the fix (srv_data.h).
 */
#include "srv_data.h"

#include "srv_base.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || cap == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static void user_name(uid_t uid, char *out, size_t cap)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != NULL) {
        snprintf(out, cap, "%s", found->pw_name);
    } else {
        snprintf(out, cap, "uid %u", (unsigned)uid);
    }
}

/* A path the running user may not use as need says (R_OK, W_OK, X_OK): why gets its owner,
 * its mode and the chown or chmod that fixes it. err is the errno of the failed access. */
static void permission_fault(const char *what, const char *path, int err, const char *fix_mode,
                             char *why, size_t cap)
{
    char me[64], owner[64];
    struct stat st;
    user_name(geteuid(), me, sizeof(me));
    if (stat(path, &st) != 0) {
        say(why, cap,
            "%s %s cannot be reached by user %s (%s): check the permissions of the "
            "folders above it",
            what, path, me, strerror(err));
    } else if (st.st_uid != geteuid() && geteuid() != 0) {
        user_name(st.st_uid, owner, sizeof(owner));
        say(why, cap,
            "%s %s is owned by %s, not by %s who runs conferd (mode %04o: %s): "
            "chown %s %s, or run conferd as %s",
            what, path, owner, me, (unsigned)(st.st_mode & 07777), strerror(err), me, path, owner);
    } else {
        say(why, cap, "%s %s is not usable by user %s (mode %04o: %s): chmod %s %s", what, path, me,
            (unsigned)(st.st_mode & 07777), strerror(err), fix_mode, path);
    }
}

/* The folder must exist, be a folder, and be readable and searchable by the running user.
 * (Whether it must be writable is the database's business: only to make -wal and -shm.) */
static int folder_check(const char *dir, char *why, size_t cap)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        int err = errno;
        if (err == ENOENT) {
            say(why, cap,
                "the data folder %s does not exist: run conferd init --data %s to make "
                "one, or pass the --data of an existing one",
                dir, dir);
            return PROTO_ENOTFOUND;
        }
        permission_fault("the data folder", dir, err, "u+rwx", why, cap);
        return PROTO_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        say(why, cap,
            "the data folder %s is not a folder: pass --data with the folder that "
            "conferd init made",
            dir);
        return PROTO_EIO;
    }
    if (faccessat(AT_FDCWD, dir, R_OK | X_OK, AT_EACCESS) != 0) {
        permission_fault("the data folder", dir, errno, "u+rwx", why, cap);
        return PROTO_EIO;
    }
    return 0;
}

int srv_data_init_why(const char *dir, char fingerprint[PROTO_FINGERPRINT_LEN], char *why,
                      size_t cap)
{
    char path[4096], me[64];
    struct proto_hostkey key;
    int rc = 0;
    int fd = -1;
    struct db *db = NULL;

    say(why, cap, "%s", "");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int err = errno;
        user_name(geteuid(), me, sizeof(me));
        say(why, cap, "cannot make the data folder %s as user %s: %s: %s", dir, me, strerror(err),
            err == ENOENT ? "make the folder above it first"
                          : "choose a place this user may write, or chmod or chown the folder "
                            "above it");
        return PROTO_EIO;
    }
    if (chmod(dir, 0700) != 0) {
        permission_fault("the data folder", dir, errno, "u+rwx", why, cap);
        return PROTO_EIO;
    }
    join(path, sizeof(path), dir, SRV_DB_FILE);
    if (access(path, F_OK) == 0) {
        say(why, cap, "%s already holds a database (%s): nothing changed", dir, path);
        return PROTO_ECONFLICT;
    }
    join(path, sizeof(path), dir, SRV_HOSTKEY_FILE);
    if (access(path, F_OK) == 0) {
        say(why, cap, "%s already holds a host key (%s): nothing changed", dir, path);
        return PROTO_ECONFLICT;
    }
    if ((rc = proto_hostkey_generate(&key)) != 0) {
        say(why, cap, "cannot make a host key: %s", proto_strerror(rc));
        goto cleanup;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        int err = errno;
        if (err == EACCES || err == EPERM) {
            permission_fault("the data folder", dir, err, "u+rwx", why, cap);
        } else {
            say(why, cap, "cannot create the host key %s: %s", path, strerror(err));
        }
        rc = PROTO_EIO;
        goto cleanup;
    }
    if (write(fd, key.sk, sizeof(key.sk)) != (ssize_t)sizeof(key.sk) || fsync(fd) != 0) {
        say(why, cap, "cannot write the host key %s: %s", path, strerror(errno));
        rc = PROTO_EIO;
        goto cleanup;
    }
    join(path, sizeof(path), dir, SRV_DB_FILE);
    if ((rc = db_open_why(&db, path, DB_CREATE, why, cap)) != 0) {
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

int srv_data_init(const char *dir, char fingerprint[PROTO_FINGERPRINT_LEN])
{
    return srv_data_init_why(dir, fingerprint, NULL, 0);
}

int srv_data_load_key_why(const char *dir, struct proto_hostkey *key, char *why, size_t cap)
{
    char path[4096], db[4096];
    struct stat st;
    int rc = 0;
    int fd = -1;

    say(why, cap, "%s", "");
    if ((rc = folder_check(dir, why, cap)) != 0) {
        return rc;
    }
    join(path, sizeof(path), dir, SRV_HOSTKEY_FILE);
    fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) {
        int err = errno;
        join(db, sizeof(db), dir, SRV_DB_FILE);
        if (err == ENOENT && access(db, F_OK) != 0) {
            say(why, cap,
                "the data folder %s has no host key and no database: run conferd init "
                "--data %s to make them",
                dir, dir);
            return PROTO_ENOTFOUND;
        }
        if (err == ENOENT) {
            say(why, cap,
                "the data folder %s has a database but no host key %s: restore the "
                "key from a backup (clients have its fingerprint)",
                dir, path);
            return PROTO_ENOTFOUND;
        }
        if (err == ELOOP) {
            say(why, cap, "the host key %s is a symbolic link: put the key file itself there",
                path);
            return PROTO_EIO;
        }
        permission_fault("the host key", path, err, "600", why, cap);
        return err == EACCES || err == EPERM ? PROTO_EPERM : PROTO_EIO;
    }
    if (fstat(fd, &st) != 0) {
        say(why, cap, "cannot read the host key %s: %s", path, strerror(errno));
        rc = PROTO_EIO;
        goto cleanup;
    }
    if ((st.st_mode & 077) != 0) {
        /* a host key others can read is no longer secret */
        say(why, cap,
            "the host key %s has mode %04o, so others may read the secret key: chmod "
            "600 %s",
            path, (unsigned)(st.st_mode & 07777), path);
        rc = PROTO_EPERM;
        goto cleanup;
    }
    if (st.st_size != (off_t)sizeof(key->sk)) {
        say(why, cap,
            "the host key %s is %lld bytes, not %zu: it is not a confer host key; "
            "restore it from a backup",
            path, (long long)st.st_size, sizeof(key->sk));
        rc = PROTO_EIO;
        goto cleanup;
    }
    if (read(fd, key->sk, sizeof(key->sk)) != (ssize_t)sizeof(key->sk)) {
        say(why, cap, "cannot read the host key %s: %s", path, strerror(errno));
        rc = PROTO_EIO;
        goto cleanup;
    }
    /* An Ed25519 secret key from libsodium ends with its public key. */
    if (crypto_sign_ed25519_sk_to_pk(key->pk, key->sk) != 0) {
        say(why, cap, "the host key %s is not an Ed25519 key: restore it from a backup", path);
        rc = PROTO_EIO;
    }
cleanup:
    close(fd);
    if (rc != 0) {
        sodium_memzero(key, sizeof(*key));
    }
    return rc;
}

int srv_data_load_key(const char *dir, struct proto_hostkey *key)
{
    return srv_data_load_key_why(dir, key, NULL, 0);
}

int srv_data_open_db_why(const char *dir, struct db **out, char *why, size_t cap)
{
    char path[4096], key[4096];
    int rc = 0;

    *out = NULL;
    say(why, cap, "%s", "");
    if ((rc = folder_check(dir, why, cap)) != 0) {
        return rc;
    }
    join(path, sizeof(path), dir, SRV_DB_FILE);
    join(key, sizeof(key), dir, SRV_HOSTKEY_FILE);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        if (access(key, F_OK) != 0) {
            say(why, cap,
                "the data folder %s has no database and no host key: run conferd init "
                "--data %s to make them",
                dir, dir);
        } else {
            say(why, cap,
                "the data folder %s has a host key but no database %s: restore it from "
                "a backup (conferd backup makes them)",
                dir, path);
        }
        return PROTO_ENOTFOUND;
    }
    return db_open_why(out, path, 0, why, cap);
}

int srv_data_open_db(const char *dir, struct db **out)
{
    return srv_data_open_db_why(dir, out, NULL, 0);
}

int srv_data_check(const char *dir, char *why, size_t cap)
{
    struct proto_hostkey key;
    struct db *db = NULL;
    int rc = srv_data_load_key_why(dir, &key, why, cap);
    sodium_memzero(&key, sizeof(key));
    if (rc == 0) {
        rc = srv_data_open_db_why(dir, &db, why, cap);
    }
    db_close(db);
    return rc;
}

int srv_data_lock(const char *dir, int *fd)
{
    char path[4096];
    *fd = -1;
    if ((size_t)snprintf(path, sizeof(path), "%s/serve.lock", dir) >= sizeof(path)) {
        return PROTO_EINVAL;
    }
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f < 0) {
        return PROTO_EIO;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(f);
        return busy ? PROTO_ECONFLICT : PROTO_EIO;
    }
    *fd = f;
    return 0;
}

void srv_data_unlock(int fd)
{
    if (fd >= 0) {
        close(fd); /* releases the lock */
    }
}
