/* cli_audit.h - what the client checks of a meeting's audit log on its own (PROTOCOL.md
 * section 15): the signed head that ends every export, and the heads it has seen.
 *
 * An export ends with the line
 *     Audit head: seq N, hash HEX, signed SIG
 * (markdown: after an empty line; html: inside <footer>...</footer></body></html>), SIG the
 * padded standard base64 of the host key's Ed25519 signature of
 *     "confer/1 audit checkpoint" || u32be(len(meeting)) || meeting || u64be(N) || hash
 * so a printed report can be checked with the server's pinned key alone.
 *
 *   heads         the newest head seen of each meeting, per server, one line each:
 *                     host:port meeting seq hash
 *                 (host:port in the canonical form of known_hosts, hash 64 lower-case hex
 *                 digits). `confer audit verify` passes it as `known`, so that a server
 *                 whose log was cut or rewritten since is caught even when its checkpoints
 *                 went with it. Written like the other files of cli_config.h: mode 0600,
 *                 atomically; malformed lines are skipped with a warning and dropped at the
 *                 next write; at most CLI_HEADS_MAX entries (the least recently updated go
 *                 first).
 */
#ifndef CONFER_CLI_AUDIT_H
#define CONFER_CLI_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli_config.h"
#include "proto_util.h"

#define CLI_AUDIT_HASH_BYTES 32
#define CLI_AUDIT_SIG_BYTES  64
#define CLI_AUDIT_HEX_LEN    (2 * CLI_AUDIT_HASH_BYTES)
#define CLI_AUDIT_FILE_MAX   (64 << 20) /* largest export `confer audit check` reads */
#define CLI_HEADS_MAX        1000       /* entries kept in the heads file */

/* One audit head, as printed at the end of an export. */
struct cli_audit_head {
    int64_t seq;
    uint8_t hash[CLI_AUDIT_HASH_BYTES];
    bool signed_; /* the line carried ", signed SIG" (a server before section 15 omits it) */
    uint8_t sig[CLI_AUDIT_SIG_BYTES];
};

/* The last line of text[0..len): the bytes after the last newline, or before it when the
 * text ends with one (a trailing "\r" excluded). *lineno gets its 1-based number. Returns
 * false for an empty text. */
bool cli_audit_last_line(const char *text, size_t len, const char **line, size_t *llen,
                         size_t *lineno);

/* Parses one audit head line, "Audit head: seq N, hash HEX" optionally followed by
 * ", signed SIG"; blanks around it, and the html "<footer>" before and
 * "</footer></body></html>" after it, are allowed. N is 1..INT64_MAX without leading zeros,
 * HEX 64 lower-case hex digits, SIG 88 characters of padded standard base64 of 64 bytes.
 * Returns 0, or PROTO_EINVAL with *why (may be NULL) saying what is wrong. */
int cli_audit_head_parse(const char *line, size_t len, struct cli_audit_head *h, const char **why);

/* Parses the head on the last line of an export text[0..len). Returns 0 or PROTO_EINVAL
 * (*why, *lineno as above). */
int cli_audit_head_find(const char *text, size_t len, struct cli_audit_head *h, size_t *lineno,
                        const char **why);

/* Appends to out the message a checkpoint of (meeting, seq, hash) signs. Returns 0 or
 * PROTO_ENOMEM. */
int cli_audit_checkpoint_msg(const char *meeting, int64_t seq,
                             const uint8_t hash[CLI_AUDIT_HASH_BYTES], struct proto_buf *out);

/* True when h is signed and its signature of (meeting, h->seq, h->hash) holds for the host
 * key pk. */
bool cli_audit_head_verify(const struct cli_audit_head *h, const char *meeting,
                           const uint8_t pk[PROTO_KEY_BYTES]);

/* Reads the whole file at path ("-": the descriptor in_fd) of at most max bytes into a
 * malloc'd NUL-terminated buffer (*out; the caller frees it). Returns 0, PROTO_ENOTFOUND,
 * PROTO_ETOOBIG (over max), PROTO_EIO (also: not a regular file or a pipe), PROTO_ENOMEM. */
int cli_audit_read_file(const char *path, int in_fd, size_t max, char **out, size_t *len);

/* Where two texts first differ, by line: *lineno (1-based) is the first line that differs,
 * (a, alen) and (b, blen) that line in each text, without its newline (NULL, 0 when the
 * text has no such line: it ended before). Returns false when the texts are equal. */
bool cli_audit_first_diff(const char *ta, size_t la, const char *tb, size_t lb, size_t *lineno,
                          const char **a, size_t *alen, const char **b, size_t *blen);

/* ---- the heads file ---- */

struct cli_head_entry {
    char server[CLI_HOSTPORT_MAX]; /* canonical host:port */
    char meeting[PROTO_NAME_MAX + 1];
    int64_t seq;
    uint8_t hash[CLI_AUDIT_HASH_BYTES];
};

/* The parsed heads file, in file order (least recently updated first). Zero-initialise
 * before cli_heads_load. */
struct cli_heads {
    struct cli_head_entry *v;
    size_t n;
    size_t cap;
    size_t skipped; /* malformed lines skipped */
};

/* Loads path into hs (emptied first). A missing file is an empty list. Malformed lines
 * (wrong field count, bad host:port, meeting, seq or hash, longer than CLI_LINE_MAX) are
 * skipped with a one-line warning on warn (NULL: silent) and counted; of two lines for one
 * server and meeting the one with the higher seq is kept; past CLI_HEADS_MAX entries the
 * first ones are dropped. Returns 0, PROTO_EIO, PROTO_ETOOBIG (file over CLI_FILE_MAX),
 * PROTO_ENOMEM; on error hs is empty. */
int cli_heads_load(struct cli_heads *hs, const char *path, FILE *warn);

/* The entry of (server, meeting), or NULL. Points into hs. */
const struct cli_head_entry *cli_heads_find(const struct cli_heads *hs, const char *server,
                                            const char *meeting);

/* Writes hs to path atomically, mode 0600 (the folder must exist). Returns 0, PROTO_EIO,
 * PROTO_ENOMEM; err says why. */
int cli_heads_save(const struct cli_heads *hs, const char *path, char *err, size_t errlen);

void cli_heads_free(struct cli_heads *hs);

/* What cli_heads_update did. */
enum cli_head_update {
    CLI_HEAD_STORED = 0, /* none was known, or an older one: this head is now the known one */
    CLI_HEAD_SAME,       /* the same head was known already */
    CLI_HEAD_OLDER,      /* a newer head is known; kept */
    CLI_HEAD_FORK,       /* another hash is known for the same seq; kept (the log changed) */
};

/* Keeps (seq, hash) as the known head of (server, meeting) when it is newer than the one
 * in the file at path: loads the file, updates it and writes it back atomically, holding a
 * lock on the file's folder (waited for a bounded time) so that two confer processes do
 * not lose each other's heads. *known (may be NULL) gets the entry held before the call
 * (seq 0 when none). Returns an enum cli_head_update (>= 0), or PROTO_EINVAL (bad server,
 * meeting or seq), PROTO_EIO, PROTO_ETOOBIG, PROTO_ENOMEM with err saying why. */
int cli_heads_update(const char *path, const char *server, const char *meeting, int64_t seq,
                     const uint8_t hash[CLI_AUDIT_HASH_BYTES], FILE *warn,
                     struct cli_head_entry *known, char *err, size_t errlen);

#endif
