/* cli_record.c - fields of a meeting record and finding its objects by name. */
#include "cli_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto_err.h"
#include "proto_rpc.h"

const char *cli_obj_str(const msgpack_object *o, const char *name, size_t *len)
{
    const msgpack_object *v = proto_mp_map_get(o, name);
    if (v == NULL || v->type != MSGPACK_OBJECT_STR) {
        return NULL;
    }
    if (len != NULL) {
        *len = v->via.str.size;
    }
    return v->via.str.ptr;
}

char *cli_obj_strcpy(const msgpack_object *o, const char *name, char *out, size_t cap)
{
    size_t n = 0;
    const char *s = cli_obj_str(o, name, &n);
    if (cap == 0) {
        return out;
    }
    if (s == NULL) {
        n = 0;
    }
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
            n--; /* not inside a character */
        }
    }
    if (n > 0) {
        memcpy(out, s, n);
    }
    out[n] = '\0';
    return out;
}

bool cli_obj_i64(const msgpack_object *o, const char *name, int64_t *out)
{
    const msgpack_object *v = proto_mp_map_get(o, name);
    if (v == NULL) {
        return false;
    }
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)v->via.u64;
        return true;
    }
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return true;
    }
    return false;
}

const msgpack_object *cli_rec_objects(const msgpack_object *rec, enum proto_type t)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    if (ti == NULL) {
        return NULL;
    }
    const msgpack_object *v = proto_mp_map_get(rec, ti->plural);
    if (v == NULL) {
        return NULL;
    }
    if (t == PROTO_T_MEETING) {
        return v->type == MSGPACK_OBJECT_MAP ? v : NULL;
    }
    return v->type == MSGPACK_OBJECT_ARRAY ? v : NULL;
}

const msgpack_object *cli_rec_by_id(const msgpack_object *rec, enum proto_type t, int64_t id)
{
    const msgpack_object *arr = t != PROTO_T_MEETING ? cli_rec_objects(rec, t) : NULL;
    for (uint32_t i = 0; arr != NULL && i < arr->via.array.size; i++) {
        int64_t v = 0;
        if (cli_obj_i64(&arr->via.array.ptr[i], "id", &v) && v == id) {
            return &arr->via.array.ptr[i];
        }
    }
    return NULL;
}

int cli_id_parse(const char *s, bool plain, int64_t *id)
{
    if (s[0] == '#') {
        s++;
    } else if (!plain) {
        return PROTO_EINVAL;
    }
    if (s[0] < '0' || s[0] > '9' || strlen(s) > 18) {
        return PROTO_EINVAL;
    }
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0') {
        return PROTO_EINVAL;
    }
    *id = v;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int cli_docref_parse(const char *s, char *ref, size_t refcap, char *rev, size_t revcap)
{
    size_t n = strlen(s);
    size_t cut = n;

    /* a trailing R and 1-3 digits, after a digit */
    size_t d = 0;
    while (d < n && d < 4 && is_digit(s[n - 1 - d])) {
        d++;
    }
    if (d >= 1 && d <= 3 && n >= d + 2 && s[n - 1 - d] == 'R' && is_digit(s[n - 2 - d])) {
        cut = n - 1 - d;
    }
    if (cut == 0) {
        return PROTO_EINVAL;
    }
    if (cut >= refcap || n - cut >= revcap) {
        return PROTO_ETOOBIG;
    }
    memcpy(ref, s, cut);
    ref[cut] = '\0';
    memcpy(rev, s + cut, n - cut);
    rev[n - cut] = '\0';
    return 0;
}

char *cli_docref_format(const msgpack_object *doc, char *out, size_t cap)
{
    size_t rl = 0;
    size_t vl = 0;
    const char *r = cli_obj_str(doc, "ref", &rl);
    const char *v = cli_obj_str(doc, "revision", &vl);
    snprintf(out, cap, "%.*s%.*s", r != NULL ? (int)rl : 0, r != NULL ? r : "",
             v != NULL ? (int)vl : 0, v != NULL ? v : "");
    return out;
}

bool cli_number_same(const char *a, const char *b)
{
    if (!proto_number_valid(a, strlen(a)) || !proto_number_valid(b, strlen(b))) {
        return false;
    }
    return proto_number_cmp(a, b) == 0;
}

/* True when the string field `name` of o equals s (ignoring case when nocase). */
static bool field_is(const msgpack_object *o, const char *name, const char *s, bool nocase)
{
    size_t n = 0;
    const char *v = cli_obj_str(o, name, &n);
    if (v == NULL) {
        v = "";
        n = 0;
    }
    if (n != strlen(s)) {
        return false;
    }
    return nocase ? strncasecmp(v, s, n) == 0 : memcmp(v, s, n) == 0;
}

static const msgpack_object *find_by(const msgpack_object *arr, const char *name, const char *s,
                                     bool nocase)
{
    for (uint32_t i = 0; arr != NULL && i < arr->via.array.size; i++) {
        if (field_is(&arr->via.array.ptr[i], name, s, nocase)) {
            return &arr->via.array.ptr[i];
        }
    }
    return NULL;
}

static const msgpack_object *find_item(const msgpack_object *arr, const char *name)
{
    const msgpack_object *o = find_by(arr, "number", name, false);
    for (uint32_t i = 0; o == NULL && arr != NULL && i < arr->via.array.size; i++) {
        char num[40];
        cli_obj_strcpy(&arr->via.array.ptr[i], "number", num, sizeof(num));
        if (cli_number_same(num, name)) {
            o = &arr->via.array.ptr[i];
        }
    }
    return o;
}

static const msgpack_object *find_action(const msgpack_object *rec, const msgpack_object *arr,
                                         const char *name)
{
    const msgpack_object *o = find_by(arr, "ref", name, false);
    if (o == NULL) {
        o = find_by(arr, "ref", name, true);
    }
    int64_t n = 0;
    if (o == NULL && cli_id_parse(name, true, &n) == 0) {
        /* N: the meeting's ACTION_PREFIX-N */
        char prefix[CLI_REF_MAX];
        char ref[CLI_REF_MAX + 24];
        cli_obj_strcpy(cli_rec_objects(rec, PROTO_T_MEETING), "action_prefix", prefix,
                       sizeof(prefix));
        if (prefix[0] != '\0') {
            snprintf(ref, sizeof(ref), "%s-%lld", prefix, (long long)n);
            o = find_by(arr, "ref", ref, true);
        }
    }
    return o;
}

static const msgpack_object *find_doc(const msgpack_object *arr, const char *name)
{
    char ref[CLI_REF_MAX];
    char rev[CLI_REV_MAX];
    const msgpack_object *nocase = NULL;

    /* the name as written: ref and revision together */
    for (uint32_t i = 0; arr != NULL && i < arr->via.array.size; i++) {
        char full[CLI_REF_MAX + CLI_REV_MAX];
        cli_docref_format(&arr->via.array.ptr[i], full, sizeof(full));
        if (strcmp(full, name) == 0) {
            return &arr->via.array.ptr[i];
        }
        if (nocase == NULL && strcasecmp(full, name) == 0) {
            nocase = &arr->via.array.ptr[i];
        }
    }
    if (nocase != NULL) {
        return nocase;
    }
    if (cli_docref_parse(name, ref, sizeof(ref), rev, sizeof(rev)) != 0) {
        return NULL;
    }
    for (uint32_t i = 0; arr != NULL && i < arr->via.array.size; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        if (field_is(o, "ref", ref, true) && field_is(o, "revision", rev, true)) {
            return o;
        }
    }
    return NULL;
}

/* The one object of arr whose field is value; NULL when none or several have it. */
static const msgpack_object *find_unique_by(const msgpack_object *arr, const char *field,
                                            const char *value)
{
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; arr != NULL && i < arr->via.array.size; i++) {
        if (field_is(&arr->via.array.ptr[i], field, value, false)) {
            if (found != NULL) {
                return NULL;
            }
            found = &arr->via.array.ptr[i];
        }
    }
    return found;
}

const msgpack_object *cli_rec_find(const msgpack_object *rec, enum proto_type t, const char *name)
{
    int64_t id = 0;

    if (t == PROTO_T_MEETING) {
        const msgpack_object *m = cli_rec_objects(rec, t);
        return m != NULL && field_is(m, "id", name, false) ? m : NULL;
    }
    const msgpack_object *arr = cli_rec_objects(rec, t);
    if (arr == NULL || name[0] == '\0') {
        return NULL;
    }
    if (cli_id_parse(name, false, &id) == 0) {
        return cli_rec_by_id(rec, t, id);
    }
    switch (t) {
    case PROTO_T_ITEM:
        return find_item(arr, name);
    case PROTO_T_ACTION:
        return find_action(rec, arr, name);
    case PROTO_T_DOC:
        return find_doc(arr, name);
    case PROTO_T_PERSON:
        if (cli_id_parse(name, true, &id) == 0) {
            return cli_rec_by_id(rec, t, id);
        }
        return find_by(arr, "name", name, true);
    case PROTO_T_INTERIM:
        if (cli_id_parse(name, true, &id) == 0) {
            return cli_rec_by_id(rec, t, id);
        }
        return find_unique_by(arr, "date", name);
    default:
        if (cli_id_parse(name, true, &id) == 0) {
            return cli_rec_by_id(rec, t, id);
        }
        return NULL;
    }
}

char *cli_obj_label(enum proto_type t, const msgpack_object *o, char *out, size_t cap)
{
    char name[CLI_REF_MAX + CLI_REV_MAX];
    int64_t id = 0;
    const struct proto_typeinfo *ti = proto_type_info(t);
    const char *noun = ti != NULL ? ti->name : "object";

    name[0] = '\0';
    switch (t) {
    case PROTO_T_MEETING:
        cli_obj_strcpy(o, "id", name, sizeof(name));
        break;
    case PROTO_T_ITEM:
        cli_obj_strcpy(o, "number", name, sizeof(name));
        break;
    case PROTO_T_ACTION:
        cli_obj_strcpy(o, "ref", name, sizeof(name));
        break;
    case PROTO_T_DOC:
        noun = "document";
        cli_docref_format(o, name, sizeof(name));
        break;
    case PROTO_T_INTERIM:
        cli_obj_strcpy(o, "date", name, sizeof(name));
        break;
    case PROTO_T_SESSION: {
        char date[CLI_DATE_LEN], start[8];
        cli_obj_strcpy(o, "date", date, sizeof(date));
        cli_obj_strcpy(o, "start", start, sizeof(start));
        snprintf(name, sizeof(name), "%s%s%s", date, date[0] && start[0] ? " " : "", start);
        break;
    }
    case PROTO_T_PERSON: {
        char who[CLI_REF_MAX];
        cli_obj_strcpy(o, "name", who, sizeof(who));
        if (who[0] != '\0') {
            snprintf(name, sizeof(name), "\"%s\"", who);
        }
        break;
    }
    default:
        break;
    }
    if (name[0] == '\0' && cli_obj_i64(o, "id", &id)) {
        snprintf(name, sizeof(name), "%lld", (long long)id); /* bare: it can be pasted */
    }
    snprintf(out, cap, "%s %s", noun, name);
    return out;
}

bool cli_interim_upcoming(const msgpack_object *o, const char *today)
{
    char date[CLI_DATE_LEN];
    cli_obj_strcpy(o, "date", date, sizeof(date));
    return date[0] != '\0' && strcmp(date, today) >= 0;
}

/* Compares two interims by date, then start time; "" (unset) sorts last. */
static int interim_cmp(const msgpack_object *a, const msgpack_object *b)
{
    static const char *const keys[] = {"date", "start"};
    for (size_t k = 0; k < 2; k++) {
        char x[CLI_DATE_LEN];
        char y[CLI_DATE_LEN];
        cli_obj_strcpy(a, keys[k], x, sizeof(x));
        cli_obj_strcpy(b, keys[k], y, sizeof(y));
        if (x[0] == '\0' || y[0] == '\0') {
            if (x[0] != y[0]) {
                return x[0] == '\0' ? 1 : -1;
            }
            continue;
        }
        int c = strcmp(x, y);
        if (c != 0) {
            return c;
        }
    }
    return 0;
}

size_t cli_interims_order(const msgpack_object *arr, const char *today, size_t *order, size_t cap)
{
    size_t n = 0;
    if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY) {
        return 0;
    }
    for (uint32_t i = 0; i < arr->via.array.size && n < cap; i++) {
        order[n++] = i;
    }
    /* insertion sort: stable, and the lists are short */
    for (size_t i = 1; i < n; i++) {
        size_t cur = order[i];
        const msgpack_object *o = &arr->via.array.ptr[cur];
        bool up = cli_interim_upcoming(o, today);
        size_t j = i;
        while (j > 0) {
            const msgpack_object *p = &arr->via.array.ptr[order[j - 1]];
            bool pup = cli_interim_upcoming(p, today);
            bool before = up != pup ? up : interim_cmp(o, p) < 0;
            if (!before) {
                break;
            }
            order[j] = order[j - 1];
            j--;
        }
        order[j] = cur;
    }
    return n;
}
