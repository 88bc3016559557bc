/* dns_msg: see dns_msg.h. Wire format from RFC 1035 section 4: header
 *   ID(16) | QR(1) OPCODE(4) AA TC RD | RA Z(3) RCODE(4) | QDCOUNT ANCOUNT NSCOUNT ARCOUNT
 * all big-endian; a question is QNAME QTYPE(16) QCLASS(16); a record NAME TYPE(16)
 * CLASS(16) TTL(32) RDLENGTH(16) RDATA. A name is labels (length byte 1-63 then bytes)
 * ending in a zero byte, or ending in a pointer (two bytes 11xxxxxx xxxxxxxx: offset). */
#include "dns_msg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct { uint16_t type; const char *name; } types[] = {
    { 1, "A" },     { 2, "NS" },   { 5, "CNAME" }, { 6, "SOA" },    { 12, "PTR" },
    { 15, "MX" },   { 16, "TXT" }, { 28, "AAAA" }, { 33, "SRV" },   { 35, "NAPTR" },
    { 43, "DS" },   { 46, "RRSIG" }, { 48, "DNSKEY" }, { 64, "SVCB" }, { 65, "HTTPS" },
    { 99, "SPF" },  { 255, "ANY" }, { 257, "CAA" },
};

uint16_t dns_type_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(types[i].name, name))
            return types[i].type;
    return 0;
}

const char *dns_type_name(uint16_t type)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type)
            return types[i].name;
    return NULL;
}

int dns_rcode_from_name(const char *name)
{
    static const char *const rcodes[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                          "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
                                          "NXRRSET", "NOTAUTH", "NOTZONE" };
    for (size_t i = 0; i < sizeof rcodes / sizeof rcodes[0]; i++)
        if (!strcasecmp(rcodes[i], name))
            return (int)i;
    return -1;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                    bool rd, size_t *len, struct vg_err *err)
{
    size_t nlen = strlen(name);
    if (nlen && name[nlen - 1] == '.')
        nlen--;
    if (nlen > 253)
        return vg_err_set(err, VG_EINVAL, "query name is over 253 bytes");
    size_t need = 12 + nlen + 2 + 4;
    if (cap < need)
        return vg_err_set(err, VG_ETOOLARGE, "query needs %zu bytes, buffer has %zu", need, cap);
    memset(buf, 0, 12);
    put16(buf, id);
    buf[2] = rd ? 0x01 : 0;
    put16(buf + 4, 1);
    size_t o = 12, i = 0;
    while (i < nlen) {
        const char *dot = memchr(name + i, '.', nlen - i);
        size_t l = dot ? (size_t)(dot - (name + i)) : nlen - i;
        if (l == 0 || l > 63)
            return vg_err_set(err, VG_EINVAL, "query name \"%s\": label %s", name,
                              l ? "over 63 bytes" : "empty");
        buf[o++] = (uint8_t)l;
        memcpy(buf + o, name + i, l);
        o += l;
        i += l + 1;
    }
    buf[o++] = 0;
    put16(buf + o, qtype);
    put16(buf + o + 2, 1);
    *len = o + 4;
    return 0;
}

/* Reads the name at *off into out (text with a final dot) and moves *off past it (past
 * the first pointer when there is one). */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char *out, struct vg_err *err)
{
    size_t p = *off, o = 0;
    bool jumped = false;
    size_t limit = *off; /* a pointer must go strictly before the name that uses it */
    for (;;) {
        if (p >= len)
            return vg_err_set(err, VG_EINVAL, "offset %zu: name runs past the end", p);
        uint8_t l = msg[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= len)
                return vg_err_set(err, VG_EINVAL, "offset %zu: truncated pointer", p);
            size_t target = (size_t)(l & 0x3f) << 8 | msg[p + 1];
            if (target >= limit)
                return vg_err_set(err, VG_EINVAL, "offset %zu: pointer does not point back", p);
            if (!jumped)
                *off = p + 2;
            jumped = true;
            limit = target;
            p = target;
            continue;
        }
        if (l & 0xc0)
            return vg_err_set(err, VG_EINVAL, "offset %zu: unknown label type", p);
        if (l == 0) {
            if (!jumped)
                *off = p + 1;
            break;
        }
        if (p + 1 + l > len)
            return vg_err_set(err, VG_EINVAL, "offset %zu: label runs past the end", p);
        if (o + l + 1 >= DNS_MAX_NAME)
            return vg_err_set(err, VG_EINVAL, "offset %zu: name over 255 bytes", p);
        for (size_t i = 0; i < l; i++) {
            char c = (char)msg[p + 1 + i];
            out[o++] = (c == '.' || !isgraph((unsigned char)c)) ? '_' : c;
        }
        out[o++] = '.';
        p += 1 + l;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return 0;
}

int dns_parse_response(const uint8_t *msg, size_t len, struct dns_response *out,
                       struct vg_err *err)
{
    if (len < 12)
        return vg_err_set(err, VG_EINVAL, "offset 0: %zu bytes, a header needs 12", len);
    memset(out, 0, offsetof(struct dns_response, rr));
    out->nrr = 0;
    out->id = get16(msg);
    out->qr = msg[2] & 0x80;
    out->opcode = (msg[2] >> 3) & 0xf;
    out->tc = msg[2] & 0x02;
    out->rd = msg[2] & 0x01;
    out->ra = msg[3] & 0x80;
    out->rcode = msg[3] & 0xf;
    out->qdcount = get16(msg + 4);
    out->ancount = get16(msg + 6);
    out->nscount = get16(msg + 8);
    out->arcount = get16(msg + 10);
    size_t off = 12;
    char name[DNS_MAX_NAME];
    for (unsigned q = 0; q < out->qdcount; q++) {
        if (read_name(msg, len, &off, name, err) < 0)
            return err->code;
        if (off + 4 > len)
            return vg_err_set(err, VG_EINVAL, "offset %zu: question runs past the end", off);
        off += 4;
    }
    unsigned counts[3] = { out->ancount, out->nscount, out->arcount };
    for (int sec = 0; sec < 3; sec++) {
        for (unsigned i = 0; i < counts[sec]; i++) {
            struct dns_rr tmp, *rr = out->nrr < DNS_MAX_RRS ? &out->rr[out->nrr] : &tmp;
            if (read_name(msg, len, &off, rr->name, err) < 0)
                return err->code;
            if (off + 10 > len)
                return vg_err_set(err, VG_EINVAL, "offset %zu: record runs past the end", off);
            rr->section = (enum dns_section)sec;
            rr->type = get16(msg + off);
            rr->klass = get16(msg + off + 2);
            rr->ttl = get32(msg + off + 4);
            rr->rdlen = get16(msg + off + 8);
            rr->rdata_off = off + 10;
            if (rr->rdata_off + rr->rdlen > len)
                return vg_err_set(err, VG_EINVAL, "offset %zu: RDATA runs past the end", off);
            off = rr->rdata_off + rr->rdlen;
            if (rr != &tmp)
                out->nrr++;
        }
    }
    return 0;
}

/* Appends with snprintf semantics; *o never passes cap - 1. */
static void app(char *out, size_t cap, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void app(char *out, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o >= cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *o, cap - *o, fmt, ap);
    va_end(ap);
    if (w > 0)
        *o += (size_t)w < cap - *o ? (size_t)w : cap - 1 - *o;
}

/* A name inside RDATA at msg[*off], which must stay within end. */
static int rdata_name(const uint8_t *msg, size_t len, size_t *off, size_t end, char *name,
                      struct vg_err *err)
{
    if (read_name(msg, len, off, name, err) < 0)
        return err->code;
    if (*off > end)
        return vg_err_set(err, VG_EINVAL, "offset %zu: name runs past RDATA", *off);
    return 0;
}

int dns_rr_text(const uint8_t *msg, size_t len, const struct dns_rr *rr, char *out, size_t cap,
                struct vg_err *err)
{
    size_t o = 0, off = rr->rdata_off, end = rr->rdata_off + rr->rdlen;
    const uint8_t *d = msg + off;
    char tname[16], n1[DNS_MAX_NAME], n2[DNS_MAX_NAME];
    const char *tn = dns_type_name(rr->type);
    if (!tn) {
        snprintf(tname, sizeof tname, "TYPE%u", rr->type);
        tn = tname;
    }
    out[0] = '\0';
    app(out, cap, &o, "%s\t%u\t%s\t%s\t", rr->name, rr->ttl, rr->klass == 1 ? "IN" : "CLASS",
        tn);
    char ip[INET6_ADDRSTRLEN];
    switch (rr->type) {
    case 1:
    case 28:
        if (rr->rdlen != (rr->type == 1 ? 4 : 16))
            return vg_err_set(err, VG_EINVAL, "offset %zu: address of %u bytes", off, rr->rdlen);
        inet_ntop(rr->type == 1 ? AF_INET : AF_INET6, d, ip, sizeof ip);
        app(out, cap, &o, "%s", ip);
        return 0;
    case 2:
    case 5:
    case 12:
        if (rdata_name(msg, len, &off, end, n1, err) < 0)
            return err->code;
        app(out, cap, &o, "%s", n1);
        return 0;
    case 15:
        if (rr->rdlen < 3)
            return vg_err_set(err, VG_EINVAL, "offset %zu: MX too short", off);
        off += 2;
        if (rdata_name(msg, len, &off, end, n1, err) < 0)
            return err->code;
        app(out, cap, &o, "%u %s", get16(d), n1);
        return 0;
    case 33:
        if (rr->rdlen < 7)
            return vg_err_set(err, VG_EINVAL, "offset %zu: SRV too short", off);
        off += 6;
        if (rdata_name(msg, len, &off, end, n1, err) < 0)
            return err->code;
        app(out, cap, &o, "%u %u %u %s", get16(d), get16(d + 2), get16(d + 4), n1);
        return 0;
    case DNS_TYPE_SOA:
        if (rdata_name(msg, len, &off, end, n1, err) < 0 ||
            rdata_name(msg, len, &off, end, n2, err) < 0)
            return err->code;
        if (off + 20 > end)
            return vg_err_set(err, VG_EINVAL, "offset %zu: SOA too short", off);
        app(out, cap, &o, "%s %s %u %u %u %u %u", n1, n2, get32(msg + off), get32(msg + off + 4),
            get32(msg + off + 8), get32(msg + off + 12), get32(msg + off + 16));
        return 0;
    case 16:
        for (size_t i = off; i < end;) {
            size_t l = msg[i];
            if (i + 1 + l > end)
                return vg_err_set(err, VG_EINVAL, "offset %zu: TXT string runs past RDATA", i);
            app(out, cap, &o, "%s\"", i > off ? " " : "");
            for (size_t k = 0; k < l; k++) {
                unsigned char c = msg[i + 1 + k];
                if (c == '"' || c == '\\')
                    app(out, cap, &o, "\\%c", c);
                else if (c < 0x20 || c > 0x7e)
                    app(out, cap, &o, "\\%03u", c);
                else
                    app(out, cap, &o, "%c", c);
            }
            app(out, cap, &o, "\"");
            i += 1 + l;
        }
        return 0;
    default:
        app(out, cap, &o, "\\# %u ", rr->rdlen);
        for (size_t i = 0; i < rr->rdlen; i++)
            app(out, cap, &o, "%02x", d[i]);
        return 0;
    }
}
