/* cli_names.h - naming a meeting's objects as people know them, for what a person reads
 * (history, watch):
 *
 *   item 9 "AOB"   RG-IEM-4   TSAG-TD257R1   interim 2023-10-09   session 2023-05-31 16:15
 *   decision 1034   person "Ana Pérez"   meeting rg-iem   member alice
 *
 * A table of names is filled from records (meeting.get, a subscription's snapshot, or an
 * older record read with `at` for objects removed since) and kept current by events: a
 * create, or an update that sets a naming field, renames. Ids are printed bare, so that
 * they can be pasted into a command (a `#` would start a shell comment).
 *
 *   struct cli_names *nm = cli_names_new();
 *   cli_names_add_record(nm, rec, true);
 *   cli_names_change(nm, event, "status", line, sizeof(line)); // "update RG-IEM-4: status"
 *   cli_names_free(nm);
 */
#ifndef CONFER_CLI_NAMES_H
#define CONFER_CLI_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define CLI_NAME_MAX 200 /* a name as written, NUL included */

struct cli_names;

struct cli_names *cli_names_new(void);
void cli_names_free(struct cli_names *nm);

/* Adds the objects of the record rec (a meeting.get result or snapshot). With replace, an
 * object already known takes the record's name; without, only objects not yet known are
 * added (an older record naming what was removed since). Returns 0 or PROTO_ENOMEM. */
int cli_names_add_record(struct cli_names *nm, const msgpack_object *rec, bool replace);

/* Renames after the event ev ({"kind", "type", "id", "fields"?}): a create or an update
 * that sets a naming field. Returns 0 or PROTO_ENOMEM. */
int cli_names_event(struct cli_names *nm, const msgpack_object *ev);

/* Marks the object of type and id as known without a name (it stays "TYPE ID"). Returns 0
 * or PROTO_ENOMEM. */
int cli_names_mark(struct cli_names *nm, const char *type, int64_t id);

/* True when the object of type (its schema name) and id has a name in the table. */
bool cli_names_known(const struct cli_names *nm, const char *type, int64_t id);

/* Writes the name of the object that the entry or event e ({"type", "id"}) is about. An
 * object the table does not know is "TYPE ID". Returns out. */
char *cli_names_of(const struct cli_names *nm, const msgpack_object *e, char *out, size_t cap);

/* Writes the description of the change e: "KIND NAME", then ": " and details when details
 * is not empty ("text item 9 \"AOB\": edit of body"). Returns out. */
char *cli_names_change(const struct cli_names *nm, const msgpack_object *e, const char *details,
                       char *out, size_t cap);

#endif
