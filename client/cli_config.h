/* cli_config.h - the client's files under $XDG_CONFIG_HOME/confer (default ~/.config/confer).
 *
 *   known_hosts   pinned host keys (PROTOCOL.md section 3), one line per server:
 *                     host:port base64(host_pk)
 *                 with standard, padded base64 of the 32-byte Ed25519 key. IPv6 hosts are
 *                 bracketed: [::1]:7414. Blank lines and lines starting with '#' are skipped.
 *   session       the current server, user, token and its expiry, and the meeting chosen
 *                 with `confer use`, as key=value lines (unknown keys are ignored).
 *   heads         the newest audit head seen of each meeting per server (cli_audit.h).
 *
 * The directory is made with mode 0700 and files are written with mode 0600, atomically
 * (a temporary file in the same directory, fsync, rename). Readers never trust the files:
 * a line that is too long or malformed is skipped with a warning, never fatal.
 */
#ifndef CONFER_CLI_CONFIG_H
#define CONFER_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto_channel.h"
#include "proto_err.h"
#include "proto_util.h"

#define CLI_HOST_MAX     256       /* host name or address, NUL included */
#define CLI_HOSTPORT_MAX 264       /* "[" host "]:" port, NUL included */
#define CLI_PATH_MAX     4096      /* any path we build */
#define CLI_LINE_MAX     1024      /* longest line read from a config file, newline excluded */
#define CLI_FILE_MAX     (1 << 20) /* largest config file read */
#define CLI_TOKEN_MAX    128       /* session token (43 base64url characters today), NUL incl. */

/* Where the configuration lives. */
struct cli_paths {
    char dir[CLI_PATH_MAX];         /* .../confer */
    char known_hosts[CLI_PATH_MAX]; /* .../confer/known_hosts */
    char session[CLI_PATH_MAX];     /* .../confer/session */
    char heads[CLI_PATH_MAX];       /* .../confer/heads: audit heads seen (cli_audit.h) */
};

/* Fills p from $XDG_CONFIG_HOME (when set and absolute) or $HOME/.config. Creates nothing.
 * Returns 0, or PROTO_EINVAL when neither variable gives a usable absolute path, or
 * PROTO_ETOOBIG when a path is too long (err says which, in words). */
int cli_paths_init(struct cli_paths *p, char *err, size_t errlen);

/* Creates p->dir (and missing parents) with mode 0700, and tightens an existing p->dir to
 * 0700. Returns 0 or PROTO_EIO (err says why). */
int cli_config_mkdir(const struct cli_paths *p, char *err, size_t errlen);

/* Replaces the file at path with data[0..len), mode 0600, atomically: the new content is
 * written to a temporary file in the same directory, synced, then renamed over path.
 * On failure path is unchanged and the temporary file removed. Returns 0 or PROTO_EIO. */
int cli_config_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* As cli_config_write_file, with the given mode (e.g. 0644 for an exported report). */
int cli_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode, char *err,
                          size_t errlen);

/* Reads a whole file of at most CLI_FILE_MAX bytes into a malloc'd, NUL-terminated buffer
 * (*out, the caller frees it; wipe it first when it held a secret). Returns 0,
 * PROTO_ENOTFOUND when the file does not exist, PROTO_ETOOBIG when it is larger than
 * CLI_FILE_MAX, PROTO_EIO on other errors, PROTO_ENOMEM. */
int cli_config_read_file(const char *path, char **out, size_t *len);

/* Reads fd to its end into a new NUL-terminated buffer (*out, the caller's; *len bytes).
 * Returns 0, PROTO_ETOOBIG past max bytes, PROTO_EIO, PROTO_ENOMEM. With secret, every
 * buffer it gives up is wiped first. */
int cli_read_fd(int fd, size_t max, bool secret, char **out, size_t *len);

/* Reads a file of lines (absent: none): cb gets each line (without "\n" or a trailing
 * "\r") and its number, and returns 0 (taken or ignored), PROTO_EINVAL with *why set (the
 * line is skipped with a one-line warning on warn, NULL: silent, and counted in
 * *skipped) or another error, which ends the reading and is returned. Lines longer than
 * CLI_LINE_MAX are skipped so. Returns 0 or an error of reading the file or of cb. */
typedef int (*cli_config_line_cb)(void *ud, const char *line, size_t n, unsigned lineno,
                                  const char **why);
int cli_config_read_lines(const char *path, FILE *warn, cli_config_line_cb cb, void *ud,
                          size_t *skipped);

/* Parses "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address (more than one
 * ':', no port). The host is lower-cased into host[0..hostcap); the port defaults to
 * PROTO_PORT. Returns 0 or PROTO_EINVAL (empty host, bad characters, bad port) or
 * PROTO_ETOOBIG (host too long). */
int cli_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port);

/* Writes the canonical "host:port" (brackets around hosts holding ':') into out.
 * Returns 0 or PROTO_ETOOBIG. */
int cli_hostport_format(const char *host, uint16_t port, char *out, size_t cap);

/* One known_hosts entry. line is its 1-based line number in the file. */
struct cli_known_host {
    char hostport[CLI_HOSTPORT_MAX];
    uint8_t pk[PROTO_KEY_BYTES];
    unsigned line;
};

/* The parsed known_hosts file. Zero-initialise before cli_known_hosts_load. */
struct cli_known_hosts {
    struct cli_known_host *v;
    size_t n;
    size_t cap;
    size_t skipped; /* malformed lines skipped */
};

/* Loads path into kh (which must be empty). A missing file is an empty list. Malformed
 * lines (no key, bad host:port, key not 32 bytes of base64, longer than CLI_LINE_MAX) are
 * skipped, each with a one-line warning on warn (NULL: silent) and counted in kh->skipped.
 * Returns 0, PROTO_EIO (unreadable file), PROTO_ETOOBIG (file over CLI_FILE_MAX) or
 * PROTO_ENOMEM; on error kh is left empty. */
int cli_known_hosts_load(struct cli_known_hosts *kh, const char *path, FILE *warn);

/* Returns the first entry for hostport (canonical form), or NULL. Points into kh. */
const struct cli_known_host *cli_known_hosts_find(const struct cli_known_hosts *kh,
                                                  const char *hostport);

/* Formats the known_hosts line (without newline) for hostport and pk into out.
 * Returns 0 or PROTO_ETOOBIG. */
int cli_known_hosts_line(const char *hostport, const uint8_t pk[PROTO_KEY_BYTES], char *out,
                         size_t cap);

/* Appends a line for hostport and pk to the file at path, keeping every existing line
 * (garbage included), and writes it atomically (creating the config directory is the
 * caller's job). Returns 0, PROTO_ETOOBIG (existing file too large), PROTO_EIO,
 * PROTO_ENOMEM; err says why in words. */
int cli_known_hosts_add(const char *path, const char *hostport, const uint8_t pk[PROTO_KEY_BYTES],
                        char *err, size_t errlen);

/* Frees the entries; kh is empty and reusable afterwards. NULL is a no-op. */
void cli_known_hosts_free(struct cli_known_hosts *kh);

/* The session file. Strings are NUL-terminated; "" means unset. */
struct cli_session {
    char server[CLI_HOSTPORT_MAX]; /* canonical host:port */
    char user[PROTO_NAME_MAX + 1];
    char token[CLI_TOKEN_MAX]; /* secret: wipe with cli_session_wipe */
    int64_t expires;           /* token expiry, ms since the epoch; 0 when unknown */
    char meeting[PROTO_NAME_MAX + 1];
};

/* Loads the session file into s (zeroed first). Malformed lines and values are skipped with
 * a warning on warn (NULL: silent); unknown keys are ignored. Returns 0, PROTO_ENOTFOUND
 * when there is no session file, PROTO_EIO, PROTO_ETOOBIG, PROTO_ENOMEM. */
int cli_session_load(struct cli_session *s, const char *path, FILE *warn);

/* Writes s to path atomically with mode 0600. Returns 0, PROTO_EINVAL (a field holds a
 * newline or is not valid), PROTO_EIO; err says why. */
int cli_session_save(const struct cli_session *s, const char *path, char *err, size_t errlen);

/* Wipes the token (and everything else) in s. */
void cli_session_wipe(struct cli_session *s);

#endif
