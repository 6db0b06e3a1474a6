/* cli_names.c - naming a meeting's objects as people know them (see cli_names.h). */
#include "cli_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_record.h"
#include "proto_err.h"
#include "proto_rpc.h"
#include "proto_schema.h"
#include "proto_util.h"

/* The fields that name an object of each type: a first and a second. */
struct name {
    enum proto_type t;
    int64_t id;
    char a[96];
    char b[104];
};

struct cli_names {
    struct name *v;
    size_t n, cap;
};

/* The naming fields of type t, NULL when it has none (named by its id). */
static void keys_of(enum proto_type t, const char **a, const char **b)
{
    *a = *b = NULL;
    switch (t) {
    case PROTO_T_ITEM:
        *a = "number";
        *b = "title";
        break;
    case PROTO_T_ACTION:
        *a = "ref";
        break;
    case PROTO_T_DOC:
        *a = "ref";
        *b = "revision";
        break;
    case PROTO_T_INTERIM:
        *a = "date";
        break;
    case PROTO_T_SESSION:
        *a = "date";
        *b = "start";
        break;
    case PROTO_T_PERSON:
        *a = "name";
        break;
    default:
        break;
    }
}

struct cli_names *cli_names_new(void)
{
    return calloc(1, sizeof(struct cli_names));
}

void cli_names_free(struct cli_names *nm)
{
    if (nm != NULL) {
        free(nm->v);
        free(nm);
    }
}

static struct name *find(const struct cli_names *nm, enum proto_type t, int64_t id)
{
    for (size_t i = 0; i < nm->n; i++) {
        if (nm->v[i].t == t && nm->v[i].id == id) {
            return &nm->v[i];
        }
    }
    return NULL;
}

/* The entry of (t, id), added empty when new; NULL when out of memory. */
static struct name *slot(struct cli_names *nm, enum proto_type t, int64_t id, bool *added)
{
    struct name *x = find(nm, t, id);
    *added = x == NULL;
    if (x != NULL) {
        return x;
    }
    if (nm->n == nm->cap) {
        size_t cap = nm->cap ? nm->cap * 2 : 64;
        struct name *v = realloc(nm->v, cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        nm->v = v;
        nm->cap = cap;
    }
    x = &nm->v[nm->n++];
    memset(x, 0, sizeof(*x));
    x->t = t;
    x->id = id;
    return x;
}

/* Copies the naming fields that o has into x (all of them when whole: absent ones clear). */
static void take(struct name *x, const msgpack_object *o, bool whole)
{
    const char *ka = NULL, *kb = NULL;
    keys_of(x->t, &ka, &kb);
    if (ka != NULL && (whole || cli_obj_str(o, ka, NULL) != NULL)) {
        cli_obj_strcpy(o, ka, x->a, sizeof(x->a));
    }
    if (kb != NULL && (whole || cli_obj_str(o, kb, NULL) != NULL)) {
        cli_obj_strcpy(o, kb, x->b, sizeof(x->b));
    }
}

int cli_names_add_record(struct cli_names *nm, const msgpack_object *rec, bool replace)
{
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        if (t == PROTO_T_MEETING) {
            continue;
        }
        const msgpack_object *arr = cli_rec_objects(rec, (enum proto_type)t);
        for (uint32_t i = 0; arr && arr->type == MSGPACK_OBJECT_ARRAY && i < arr->via.array.size;
             i++) {
            const msgpack_object *o = &arr->via.array.ptr[i];
            int64_t id = 0;
            bool added = false;
            if (!cli_obj_i64(o, "id", &id)) {
                continue;
            }
            struct name *x = slot(nm, (enum proto_type)t, id, &added);
            if (x == NULL) {
                return PROTO_ENOMEM;
            }
            if (added || replace) {
                take(x, o, true);
            }
        }
    }
    return 0;
}

int cli_names_event(struct cli_names *nm, const msgpack_object *ev)
{
    char kind[16], type[16];
    int64_t id = 0;
    cli_obj_strcpy(ev, "kind", kind, sizeof(kind));
    cli_obj_strcpy(ev, "type", type, sizeof(type));
    const msgpack_object *f = proto_mp_map_get(ev, "fields");
    enum proto_type t = proto_type_find(type, strlen(type));
    if (f == NULL || f->type != MSGPACK_OBJECT_MAP || t == PROTO_T_COUNT || t == PROTO_T_MEETING ||
        !cli_obj_i64(ev, "id", &id) ||
        (strcmp(kind, "create") != 0 && strcmp(kind, "update") != 0)) {
        return 0;
    }
    bool added = false;
    struct name *x = slot(nm, t, id, &added);
    if (x == NULL) {
        return PROTO_ENOMEM;
    }
    take(x, f, strcmp(kind, "create") == 0);
    return 0;
}

int cli_names_mark(struct cli_names *nm, const char *type, int64_t id)
{
    enum proto_type t = proto_type_find(type, strlen(type));
    bool added = false;
    if (t == PROTO_T_COUNT) {
        return 0;
    }
    return slot(nm, t, id, &added) != NULL ? 0 : PROTO_ENOMEM;
}

bool cli_names_known(const struct cli_names *nm, const char *type, int64_t id)
{
    enum proto_type t = proto_type_find(type, strlen(type));
    return t != PROTO_T_COUNT && find(nm, t, id) != NULL;
}

char *cli_names_of(const struct cli_names *nm, const msgpack_object *e, char *out, size_t cap)
{
    char type[16], ids[PROTO_NAME_MAX + 1];
    int64_t id = 0;
    cli_obj_strcpy(e, "type", type, sizeof(type));
    if (!cli_obj_i64(e, "id", &id)) {
        /* the meeting, or a member: named by their own names */
        cli_obj_strcpy(e, "id", ids, sizeof(ids));
        snprintf(out, cap, "%s %s", type, ids);
        return out;
    }
    enum proto_type t = proto_type_find(type, strlen(type));
    const struct name *x = t != PROTO_T_COUNT ? find(nm, t, id) : NULL;
    if (x == NULL || x->a[0] == '\0') {
        snprintf(out, cap, "%s %lld", type, (long long)id);
        return out;
    }
    switch (t) {
    case PROTO_T_ITEM:
        snprintf(out, cap, x->b[0] ? "item %s \"%s\"" : "item %s", x->a, x->b);
        break;
    case PROTO_T_ACTION:
        snprintf(out, cap, "%s", x->a);
        break;
    case PROTO_T_DOC:
        snprintf(out, cap, "%s%s", x->a, x->b);
        break;
    case PROTO_T_SESSION:
        snprintf(out, cap, x->b[0] ? "session %s %s" : "session %s", x->a, x->b);
        break;
    case PROTO_T_PERSON:
        snprintf(out, cap, "person \"%s\"", x->a);
        break;
    default:
        snprintf(out, cap, "%s %s", type, x->a);
        break;
    }
    return out;
}

char *cli_names_change(const struct cli_names *nm, const msgpack_object *e, const char *details,
                       char *out, size_t cap)
{
    char kind[16], name[CLI_NAME_MAX];
    cli_obj_strcpy(e, "kind", kind, sizeof(kind));
    cli_names_of(nm, e, name, sizeof(name));
    if (strcmp(kind, "member") == 0) {
        snprintf(out, cap, "%s%s%s", name, details && details[0] ? ": " : "",
                 details ? details : "");
    } else {
        snprintf(out, cap, "%s %s%s%s", kind, name, details && details[0] ? ": " : "",
                 details ? details : "");
    }
    return out;
}
