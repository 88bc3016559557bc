/* loki_push: see loki_push.h.
 *
 * The JSON body is read by a small scanner written for this one shape rather than
 * through a JSON tree: lines are most of the bytes, and a line without escapes is
 * handed to the store where it lies in the body, never copied (a line with escapes is
 * unescaped into the arena). The scanner checks JSON's grammar where it reads (strings,
 * numbers, structure), skips unknown members of any shape up to LOKI_PUSH_MAX_DEPTH,
 * and never reads past the body. Errors name the JSON path and byte offset.
 *
 * The protobuf body is unpacked by protobuf-c into the arena (otlp_receiver_decode,
 * which bounds nesting and memory); lines and metadata are bytes fields there
 * (proto/loki_push.proto), so they keep their length.
 *
 * Arrays whose length is not known ahead (a JSON stream's entries) grow by doubling in
 * the arena; the waste is bounded by what the arena cap allows. */
#include "loki_push.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_log.h"
#include "../compress.h"
#include "../http.h"
#include "../promql/lexer.h"
#include "ingest.h"
#include "otlp_receiver.h"

#include "loki_push.pb-c.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RECV "loki_push"
#define NS_PER_S 1000000000LL

/* Prints at most 64 bytes of a string for error messages. */
#define SHOW(p, n) (int)((n) > 64 ? 64 : (n)), (p)

static struct vg_complaint complain_invalid;
static struct vg_complaint complain_partial;
static struct vg_complaint complain_storage;

const char *loki_push_reject_name(enum loki_push_reject r)
{
    switch (r) {
    case LOKI_PUSH_REJECT_LABELS: return "invalid_labels";
    case LOKI_PUSH_REJECT_FUTURE: return INGEST_REJECT_FUTURE;
    case LOKI_PUSH_REJECT_TOO_OLD: return INGEST_REJECT_TOO_OLD;
    case LOKI_PUSH_REJECT_COUNT: break;
    }
    return "unknown";
}

/* ---- shared by both encodings: validation and the batch being built ---- */

struct dec {
    const struct loki_push_opts *o;
    struct vg_arena *a;
    struct vg_err *err;
    struct loki_push_batch *out;
    size_t cap;         /* of out->streams */
    struct vg_buf text; /* scratch: unquoted label values (heap) */
};

static int nomem(struct dec *d)
{
    return vg_err_set(d->err, VG_ENOMEM, "out of memory decoding a Loki push");
}

/* The arena array old (n elements of size sz, room for *cap) with room for n + 1,
 * moved to a doubled block when full; NULL (err set) when out of memory. */
static void *grow(struct dec *d, void *old, size_t *cap, size_t n, size_t sz)
{
    if (old && n < *cap)
        return old;
    size_t nc = old && *cap ? *cap * 2 : 8;
    if (nc <= n)
        nc = n + 1;
    void *p = vg_arena_alloc(d->a, nc * sz);
    if (!p) {
        nomem(d);
        return NULL;
    }
    if (old && n)
        memcpy(p, old, n * sz);
    *cap = nc;
    return p;
}

static void refuse(struct dec *d, enum loki_push_reject r, uint64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse(struct dec *d, enum loki_push_reject r, uint64_t n, const char *fmt, ...)
{
    struct loki_push_batch *out = d->out;
    out->rejected += n;
    out->rejected_by[r] += n;
    if (out->reason[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

/* Why a label set cannot name a stream, or NULL; drops empty values and sorts first. */
static const char *labels_problem(struct label *ls, size_t *n, struct vg_str *which)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (ls[i].value.len)
            ls[k++] = ls[i];
    *n = k;
    if (k == 0)
        return "at least one label pair with a value is required per stream";
    labels_sort(ls, k);
    for (size_t i = 0; i < k; i++) {
        *which = ls[i].name;
        if (!ingest_valid_label_name(ls[i].name))
            return "invalid label name";
        if (i && vg_str_eq(ls[i - 1].name, ls[i].name))
            return "duplicate label name";
        if (!ingest_valid_utf8(ls[i].value))
            return "label value is not valid UTF-8";
    }
    return NULL;
}

/* Validates one stream (its index in the request is si) and adds what is accepted. */
static int finish_stream(struct dec *d, size_t si, struct label *ls, size_t nls,
                         struct lentry *es, size_t ne)
{
    d->out->entries += ne;
    if (ne == 0)
        return 0;
    struct vg_str which = { "", 0 };
    const char *why = labels_problem(ls, &nls, &which);
    if (why) {
        refuse(d, LOKI_PUSH_REJECT_LABELS, ne, "stream %zu: %s%s%.*s%s (invalid_labels)", si,
               why, which.len ? " \"" : "", SHOW(which.p, which.len), which.len ? "\"" : "");
        return 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        int64_t t = es[i].t;
        if (t < 0) {
            refuse(d, LOKI_PUSH_REJECT_TOO_OLD, 1,
                   "stream %zu, entry %zu: time %" PRId64 " ns is before 1970 (too_old)", si, i,
                   t);
        } else if (t > d->o->now_ns &&
                   (uint64_t)t - (uint64_t)d->o->now_ns > (uint64_t)d->o->max_future_ns) {
            refuse(d, LOKI_PUSH_REJECT_FUTURE, 1,
                   "stream %zu, entry %zu: time %" PRId64 " ns is more than %" PRId64
                   " s after the receive time %" PRId64 " ns (" INGEST_REJECT_FUTURE ")",
                   si, i, t, (int64_t)(d->o->max_future_ns / NS_PER_S), d->o->now_ns);
        } else {
            es[k++] = es[i];
        }
    }
    if (k == 0)
        return 0;
    struct loki_push_batch *out = d->out;
    struct logstore_stream_in *v = grow(d, out->streams, &d->cap, out->nstreams, sizeof *v);
    if (!v)
        return VG_ENOMEM;
    out->streams = v;
    out->streams[out->nstreams++] = (struct logstore_stream_in){
        .labels = ls, .nlabels = nls, .entries = es, .nentries = k };
    return 0;
}

/* ---- the labels string: `{name="value", ...}` ---- */

static bool ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool ident_char(char c)
{
    return ident_start(c) || (c >= '0' && c <= '9');
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static int labels_error(struct dec *d, size_t si, const char *s, size_t len, size_t at,
                        const char *what)
{
    return vg_err_set(d->err, VG_EINVAL,
                      "stream %zu: labels %.*s%s: byte %zu: %s (expected {name=\"value\", ...})",
                      si, SHOW(s, len), len > 64 ? "..." : "", at, what);
}

/* Parses the labels string of stream si into arena labels (unvalidated). */
static int parse_labels(struct dec *d, size_t si, const char *s, size_t len, struct label **out,
                        size_t *nout)
{
    size_t n = 0, cap = 0, i = skip_ws(s, len, 0);
    struct label *ls = NULL;
    if (i >= len || s[i] != '{')
        return labels_error(d, si, s, len, i, "expected '{'");
    i = skip_ws(s, len, i + 1);
    while (i < len && s[i] != '}') {
        if (n) {
            if (s[i] != ',')
                return labels_error(d, si, s, len, i, "expected ',' or '}'");
            i = skip_ws(s, len, i + 1);
        }
        size_t start = i;
        if (i >= len || !ident_start(s[i]))
            return labels_error(d, si, s, len, i, "expected a label name");
        while (i < len && ident_char(s[i]))
            i++;
        struct vg_str name = { s + start, i - start };
        i = skip_ws(s, len, i);
        if (i >= len || s[i] != '=' || (i + 1 < len && (s[i + 1] == '~' || s[i + 1] == '=')))
            return labels_error(d, si, s, len, i, "expected '=' (the only operator allowed)");
        i = skip_ws(s, len, i + 1);
        if (i >= len || (s[i] != '"' && s[i] != '\'' && s[i] != '`'))
            return labels_error(d, si, s, len, i, "expected a quoted label value");
        struct lexer_str_error le;
        size_t end;
        vg_buf_reset(&d->text);
        enum lexer_str_fail f = lexer_scan_string(s, len, i, &end, &d->text, &le);
        if (f == LS_NOMEM)
            return nomem(d);
        if (f != LS_OK) {
            char msg[128];
            lexer_string_message(&le, msg, sizeof msg);
            return labels_error(d, si, s, len, le.at, msg);
        }
        struct label *v = grow(d, ls, &cap, n, sizeof *ls);
        if (!v)
            return VG_ENOMEM;
        ls = v;
        char *val = vg_arena_strndup(d->a, d->text.p ? d->text.p : "", d->text.len);
        if (!val)
            return nomem(d);
        ls[n].name = name;
        ls[n++].value = (struct vg_str){ val, d->text.len };
        i = skip_ws(s, len, end);
    }
    if (i >= len)
        return labels_error(d, si, s, len, i, "expected '}'");
    if (skip_ws(s, len, i + 1) != len)
        return labels_error(d, si, s, len, i + 1, "unexpected text after '}'");
    *out = ls;
    *nout = n;
    return 0;
}

/* ---- protobuf ---- */

static struct vg_str bin(ProtobufCBinaryData b)
{
    return (struct vg_str){ b.len ? (const char *)b.data : "", b.len };
}

/* seconds + nanos as ns since the epoch, saturated at the int64 range (a saturated
 * time is then refused as too old or too far in the future). */
static int64_t pb_time(const Logproto__Timestamp *ts)
{
    if (!ts)
        return 0;
    int64_t s = ts->seconds, ns = ts->nanos;
    /* nanos is an int32 of either sign: keep 3 s of room for it. */
    if (s > INT64_MAX / NS_PER_S - 3)
        return INT64_MAX;
    if (s < INT64_MIN / NS_PER_S + 3)
        return INT64_MIN;
    return s * NS_PER_S + ns;
}

static int decode_pb(struct dec *d, const void *buf, size_t len)
{
    ProtobufCMessage *m;
    int rc = otlp_receiver_decode(&logproto__push_request__descriptor, buf, len, false, d->a,
                                  LOKI_PUSH_ARENA_FACTOR, &m, d->err);
    if (rc < 0)
        return rc;
    const Logproto__PushRequest *req = (const Logproto__PushRequest *)m;
    for (size_t si = 0; si < req->n_streams; si++) {
        const Logproto__StreamAdapter *st = req->streams[si];
        struct label *ls = NULL;
        size_t nls = 0;
        struct vg_str lstr = bin(st->labels);
        rc = parse_labels(d, si, lstr.p, lstr.len, &ls, &nls);
        if (rc < 0)
            return rc;
        struct lentry *es = vg_arena_alloc(d->a, (st->n_entries ? st->n_entries : 1) * sizeof *es);
        if (!es)
            return nomem(d);
        for (size_t i = 0; i < st->n_entries; i++) {
            const Logproto__EntryAdapter *e = st->entries[i];
            struct label *meta = NULL;
            if (e->n_structuredmetadata) {
                meta = vg_arena_alloc(d->a, e->n_structuredmetadata * sizeof *meta);
                if (!meta)
                    return nomem(d);
            }
            for (size_t k = 0; k < e->n_structuredmetadata; k++) {
                meta[k].name = bin(e->structuredmetadata[k]->name);
                meta[k].value = bin(e->structuredmetadata[k]->value);
            }
            es[i] = (struct lentry){ .t = pb_time(e->timestamp), .line = bin(e->line),
                                     .meta = meta, .nmeta = e->n_structuredmetadata };
        }
        rc = finish_stream(d, si, ls, nls, es, st->n_entries);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- JSON ---- */

struct jp {
    struct dec *d;
    const char *s;
    size_t len, pos;
    size_t si, ei; /* the stream and entry being read, for messages */
    int where;     /* 0 top level, 1 in a stream, 2 in an entry */
};

static int jerr(struct jp *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int jerr(struct jp *j, const char *fmt, ...)
{
    char what[256], path[64] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (j->where == 1)
        snprintf(path, sizeof path, "streams[%zu]: ", j->si);
    else if (j->where == 2)
        snprintf(path, sizeof path, "streams[%zu].values[%zu]: ", j->si, j->ei);
    return vg_err_set(j->d->err, VG_EINVAL, "invalid Loki push JSON: %sbyte %zu: %s", path,
                      j->pos, what);
}

static void jws(struct jp *j)
{
    j->pos = skip_ws(j->s, j->len, j->pos);
}

static char jpeek(struct jp *j)
{
    jws(j);
    return j->pos < j->len ? j->s[j->pos] : '\0';
}

static int jexpect(struct jp *j, char c)
{
    if (jpeek(j) != c)
        return j->pos < j->len ? jerr(j, "expected '%c', found '%c'", c, j->s[j->pos])
                               : jerr(j, "expected '%c', found the end of the body", c);
    j->pos++;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Four hex digits at p (bounds checked by the caller); -1 when not hex. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Unescapes the string body [p, end) (escapes known to be present) into the arena.
 * The output is never longer than the input: every escape shrinks or keeps its size. */
static int unescape(struct jp *j, const char *p, const char *end, struct vg_str *out)
{
    char *o = vg_arena_alloc(j->d->a, (size_t)(end - p) + 1);
    if (!o)
        return nomem(j->d);
    size_t n = 0;
    while (p < end) {
        if (*p != '\\') {
            o[n++] = *p++;
            continue;
        }
        char c = p[1]; /* the scan checked an escape is complete */
        p += 2;
        switch (c) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        default: { /* 'u' */
            unsigned long u = (unsigned long)hex4(p);
            p += 4;
            if (u >= 0xD800 && u <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                long lo = hex4(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    u = 0x10000 + ((u - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
                    p += 6;
                }
            }
            if (u >= 0xD800 && u <= 0xDFFF)
                u = 0xFFFD; /* a lone surrogate, as Go's decoder replaces it */
            n += put_utf8(o + n, u);
        }
        }
    }
    o[n] = 0;
    *out = (struct vg_str){ o, n };
    return 0;
}

/* A JSON string at the current position; points into the body unless it has escapes. */
static int jstring(struct jp *j, struct vg_str *out)
{
    if (jpeek(j) != '"')
        return jerr(j, "expected a string%s",
                    j->pos < j->len ? "" : ", found the end of the body");
    size_t start = ++j->pos;
    bool escaped = false;
    while (j->pos < j->len) {
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c == '"') {
            const char *p = j->s + start, *end = j->s + j->pos;
            j->pos++;
            if (!escaped) {
                *out = (struct vg_str){ p, (size_t)(end - p) };
                return 0;
            }
            return unescape(j, p, end, out);
        }
        if (c < 0x20)
            return jerr(j, "control character 0x%02x in a string", c);
        if (c == '\\') {
            escaped = true;
            if (j->pos + 1 >= j->len)
                break;
            char e = j->s[j->pos + 1];
            if (e == 'u') {
                if (j->len - j->pos < 6 || hex4(j->s + j->pos + 2) < 0)
                    return jerr(j, "\\u must be followed by four hex digits");
                j->pos += 6;
                continue;
            }
            if (e == 0 || !strchr("\"\\/bfnrt", e))
                return jerr(j, "invalid escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
            j->pos += 2;
            continue;
        }
        j->pos++;
    }
    return jerr(j, "unterminated string");
}

/* Skips a JSON number, checking its grammar. */
static int jnumber(struct jp *j)
{
    size_t i = j->pos;
    const char *s = j->s;
    if (i < j->len && s[i] == '-')
        i++;
    if (i >= j->len || s[i] < '0' || s[i] > '9')
        return jerr(j, "invalid number");
    if (s[i] == '0')
        i++;
    else
        while (i < j->len && s[i] >= '0' && s[i] <= '9')
            i++;
    if (i < j->len && s[i] == '.') {
        if (++i >= j->len || s[i] < '0' || s[i] > '9')
            return jerr(j, "invalid number");
        while (i < j->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < j->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < j->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= j->len || s[i] < '0' || s[i] > '9')
            return jerr(j, "invalid number");
        while (i < j->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    j->pos = i;
    return 0;
}

static int jskip(struct jp *j, int depth);

/* Calls member(j, key, arg) for each member of an object; the callback reads the value. */
static int jobject(struct jp *j, int (*member)(struct jp *, struct vg_str, void *), void *arg)
{
    int rc = jexpect(j, '{');
    if (rc < 0)
        return rc;
    if (jpeek(j) == '}') {
        j->pos++;
        return 0;
    }
    for (;;) {
        struct vg_str key;
        if ((rc = jstring(j, &key)) < 0 || (rc = jexpect(j, ':')) < 0 ||
            (rc = member(j, key, arg)) < 0)
            return rc;
        char c = jpeek(j);
        j->pos++;
        if (c == '}')
            return 0;
        if (c != ',') {
            j->pos--;
            return jerr(j, "expected ',' or '}' in an object");
        }
    }
}

/* Calls elem(j, index, arg) for each element of an array. */
static int jarray(struct jp *j, int (*elem)(struct jp *, size_t, void *), void *arg)
{
    int rc = jexpect(j, '[');
    if (rc < 0)
        return rc;
    if (jpeek(j) == ']') {
        j->pos++;
        return 0;
    }
    for (size_t i = 0;; i++) {
        if ((rc = elem(j, i, arg)) < 0)
            return rc;
        char c = jpeek(j);
        j->pos++;
        if (c == ']')
            return 0;
        if (c != ',') {
            j->pos--;
            return jerr(j, "expected ',' or ']' in an array");
        }
    }
}

static int skip_member(struct jp *j, struct vg_str key, void *arg)
{
    (void)key;
    return jskip(j, *(int *)arg);
}

static int skip_elem(struct jp *j, size_t i, void *arg)
{
    (void)i;
    return jskip(j, *(int *)arg);
}

static int jliteral(struct jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if (j->len - j->pos < n || memcmp(j->s + j->pos, lit, n) != 0)
        return jerr(j, "invalid value");
    j->pos += n;
    return 0;
}

/* Skips any value, nesting at most LOKI_PUSH_MAX_DEPTH deep. */
static int jskip(struct jp *j, int depth)
{
    if (depth >= LOKI_PUSH_MAX_DEPTH)
        return jerr(j, "values nested deeper than %d levels", LOKI_PUSH_MAX_DEPTH);
    int next = depth + 1;
    struct vg_str s;
    switch (jpeek(j)) {
    case '{': return jobject(j, skip_member, &next);
    case '[': return jarray(j, skip_elem, &next);
    case '"': return jstring(j, &s);
    case 't': return jliteral(j, "true");
    case 'f': return jliteral(j, "false");
    case 'n': return jliteral(j, "null");
    default: return jnumber(j);
    }
}

/* A stream's labels or an entry's metadata: an object of strings, into a growing array. */
struct pairs {
    struct label *v;
    size_t n, cap;
    const char *what;
};

static int pair_member(struct jp *j, struct vg_str key, void *arg)
{
    struct pairs *p = arg;
    struct vg_str value;
    if (jpeek(j) != '"')
        return jerr(j, "%s \"%.*s\": expected a string value", p->what, SHOW(key.p, key.len));
    int rc = jstring(j, &value);
    if (rc < 0)
        return rc;
    struct label *v = grow(j->d, p->v, &p->cap, p->n, sizeof *v);
    if (!v)
        return VG_ENOMEM;
    p->v = v;
    p->v[p->n].name = key;
    p->v[p->n++].value = value;
    return 0;
}

/* The time of an entry: a decimal string or integer of ns since the epoch. */
static int jtime(struct jp *j, int64_t *t)
{
    struct vg_str s;
    int rc;
    bool quoted = jpeek(j) == '"';
    size_t at = j->pos;
    if (quoted) {
        if ((rc = jstring(j, &s)) < 0)
            return rc;
    } else {
        if ((rc = jnumber(j)) < 0)
            return rc;
        s = (struct vg_str){ j->s + at, j->pos - at };
    }
    size_t i = s.len && s.p[0] == '-' ? 1 : 0;
    bool neg = i == 1;
    uint64_t v = 0;
    if (i == s.len)
        goto bad;
    for (; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9' || v > (uint64_t)INT64_MAX / 10)
            goto bad;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        goto bad;
    *t = neg ? -(int64_t)v : (int64_t)v;
    return 0;
bad:
    j->pos = at;
    return jerr(j, "the time must be a string of nanoseconds since the epoch, got %.*s",
                SHOW(s.p, s.len));
}

struct stream_acc {
    struct pairs labels;
    struct lentry *es;
    size_t ne, cap;
    bool have_labels;
};

/* One element of "values": [time, line] or [time, line, {metadata}]. */
static int value_elem(struct jp *j, size_t i, void *arg)
{
    struct stream_acc *sa = arg;
    j->ei = i;
    j->where = 2;
    int rc = jexpect(j, '[');
    if (rc < 0)
        return rc;
    struct lentry *v = grow(j->d, sa->es, &sa->cap, sa->ne, sizeof *v);
    if (!v)
        return VG_ENOMEM;
    sa->es = v;
    struct lentry *e = &sa->es[sa->ne];
    *e = (struct lentry){ 0 };
    if ((rc = jtime(j, &e->t)) < 0 || (rc = jexpect(j, ',')) < 0 ||
        (rc = jstring(j, &e->line)) < 0)
        return rc;
    if (jpeek(j) == ',') {
        j->pos++;
        struct pairs meta = { .what = "structured metadata" };
        if (jpeek(j) != '{')
            return jerr(j, "the third element must be an object of structured metadata");
        if ((rc = jobject(j, pair_member, &meta)) < 0)
            return rc;
        e->meta = meta.v;
        e->nmeta = meta.n;
    }
    if (jpeek(j) != ']')
        return jerr(j, "expected ']': an entry is [time, line] or [time, line, {metadata}]");
    j->pos++;
    sa->ne++;
    j->where = 1;
    return 0;
}

static int stream_member(struct jp *j, struct vg_str key, void *arg)
{
    struct stream_acc *sa = arg;
    if (vg_str_eq_c(key, "stream")) {
        sa->labels.n = 0;
        sa->have_labels = true;
        return jobject(j, pair_member, &sa->labels);
    }
    if (vg_str_eq_c(key, "values"))
        return jarray(j, value_elem, sa);
    return jskip(j, 2);
}

static int stream_elem(struct jp *j, size_t i, void *arg)
{
    (void)arg;
    j->si = i;
    j->where = 1;
    struct stream_acc sa = { .labels = { .what = "stream label" } };
    int rc = jobject(j, stream_member, &sa);
    if (rc < 0)
        return rc;
    if (!sa.have_labels && sa.ne)
        return jerr(j, "a stream with values needs a \"stream\" object of labels");
    rc = finish_stream(j->d, i, sa.labels.v, sa.labels.n, sa.es, sa.ne);
    j->where = 0;
    return rc;
}

static int top_member(struct jp *j, struct vg_str key, void *arg)
{
    (void)arg;
    if (vg_str_eq_c(key, "streams"))
        return jarray(j, stream_elem, NULL);
    return jskip(j, 1);
}

static int decode_json(struct dec *d, const char *buf, size_t len)
{
    struct jp j = { .d = d, .s = buf, .len = len };
    if (jpeek(&j) != '{')
        return jerr(&j, "the body must be a JSON object {\"streams\": [...]}");
    int rc = jobject(&j, top_member, NULL);
    if (rc < 0)
        return rc;
    jws(&j);
    if (j.pos != len)
        return jerr(&j, "unexpected data after the JSON object");
    return 0;
}

int loki_push_decode(const void *buf, size_t len, bool json, const struct loki_push_opts *o,
                     struct vg_arena *a, struct loki_push_batch *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    struct dec d = { .o = o, .a = a, .err = err, .out = out };
    vg_buf_init(&d.text);
    int rc = json ? decode_json(&d, buf, len) : decode_pb(&d, buf, len);
    vg_buf_free(&d.text);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- HTTP ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* The media type of Content-Type value ct (parameters ignored) is want. */
static bool media_is(const char *ct, const char *want)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* The body as a PushRequest's bytes or JSON text; false with resp filled when refused. */
static bool body_of(struct vigil *v, struct http_request *req, bool *json, struct vg_str *body,
                    struct http_response *resp)
{
    struct vg_err err;
    const char *ct = req->content_type;
    const char *ce = req->content_encoding;
    bool ident = !ce || !*ce || strcasecmp(ce, "identity") == 0;
    *json = ct && media_is(ct, "application/json");
    if (!*json && ct && *ct && !media_is(ct, "application/x-protobuf")) {
        vg_err_set(&err, VG_EMEDIA,
                   "unsupported Content-Type \"%.100s\": a Loki push is application/json or "
                   "snappy-compressed application/x-protobuf",
                   ct);
        http_resp_error_text(resp, &err);
        return false;
    }
    if (!ident && (*json || strcasecmp(ce, "snappy") != 0)) {
        vg_err_set(&err, VG_EMEDIA, "unsupported Content-Encoding \"%.100s\": use gzip or none%s",
                   ce, *json ? "" : " (protobuf bodies are always snappy-compressed)");
        http_resp_error_text(resp, &err);
        return false;
    }
    if (*json) {
        *body = req->body;
        return true;
    }
    int64_t max = v->cfg->limits.max_decoded_bytes;
    if (compress_snappy_decode(req->body.p, req->body.len, max > 0 ? (size_t)max : SIZE_MAX,
                               req->arena, body, &err) < 0) {
        vg_err_prefix(&err, "snappy-compressed protobuf body");
        http_resp_error_text(resp, &err);
        return false;
    }
    return true;
}

/* Answers a push whose valid part was stored: 204, or 400 naming what was refused. */
static void answer(const struct loki_push_batch *b, const struct logstore_push_result *pr,
                   const char *store_reason, struct http_response *resp)
{
    uint64_t by_store = 0;
    for (int r = 0; r < LOGSTORE_REJECT_COUNT; r++)
        by_store += pr->rejected[r];
    if (!b->rejected && !by_store) {
        resp->status = 204;
        resp->content_type = "text/plain; charset=utf-8";
        return;
    }
    struct vg_err err;
    char msg[2 * VG_ERR_MSG_MAX];
    size_t n = 0;
    msg[0] = 0;
    if (b->rejected)
        n = (size_t)snprintf(msg, sizeof msg, "%" PRIu64 " of %" PRIu64
                             " entries rejected; first: %s", b->rejected, b->entries, b->reason);
    if (by_store && n < sizeof msg)
        snprintf(msg + n, sizeof msg - n, "%s%" PRIu64 " entries rejected by the store; first: %s",
                 n ? "; " : "", by_store, store_reason);
    vg_err_set(&err, VG_EINVAL, "%s; the other entries were stored", msg);
    vg_complain(&complain_partial, 60000, VG_LOG_WARN, RECV, "stored part of a Loki push",
                err.msg);
    http_resp_error_text(resp, &err);
}

static void handle_push(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    bool json;
    struct vg_str body;
    if (!body_of(v, req, &json, &body, resp)) {
        ingest_count_request(v, RECV, resp->status);
        return;
    }
    struct vg_err err;
    vg_err_clear(&err);
    struct loki_push_batch b;
    struct loki_push_opts o = { .now_ns = now_ns(), .max_future_ns = INGEST_LOG_MAX_FUTURE_NS };
    size_t outer = otlp_receiver_cap_arena(v->cfg, req->arena, LOKI_PUSH_ARENA_FACTOR);
    bool capped = vg_arena_get_limit(req->arena) != 0;
    int rc = loki_push_decode(body.p, body.len, json, &o, req->arena, &b, &err);
    vg_arena_set_limit(req->arena, outer);
    if (rc == VG_ENOMEM && capped) {
        /* The arena refuses at its cap or when vg_malloc fails; a probe tells which. */
        void *probe = vg_malloc((size_t)1 << 16);
        if (probe)
            rc = vg_err_set(&err, VG_ETOOLARGE,
                            "request too large to decode: a %zu-byte push may use at most %d "
                            "times limits.max_decoded_bytes in memory",
                            body.len, LOKI_PUSH_ARENA_FACTOR);
        vg_free(probe);
    }
    if (rc < 0) {
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, RECV, "rejected a Loki push",
                    err.msg);
        http_resp_error_text(resp, &err);
        ingest_count_request(v, RECV, resp->status);
        return;
    }
    for (int r = 0; r < LOKI_PUSH_REJECT_COUNT; r++)
        ingest_count_lines_rejected(v, RECV, loki_push_reject_name((enum loki_push_reject)r),
                                    b.rejected_by[r]);
    struct logstore_push_result pr;
    memset(&pr, 0, sizeof pr);
    if (b.nstreams && ingest_store_logs(v, RECV, b.streams, b.nstreams, &pr, &err) < 0) {
        vg_complain(&complain_storage, 10000, VG_LOG_ERROR, RECV, "storing a Loki push failed",
                    err.msg);
        http_resp_error_text(resp, &err);
    } else {
        answer(&b, &pr, err.msg, resp);
    }
    ingest_count_request(v, RECV, resp->status);
}

static const struct http_route routes[] = {
    { "POST", "/loki/api/v1/push", false, handle_push, "/loki/api/v1/push" },
};

const struct vigil_module mod_loki_push = {
    .name = "loki_push",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
