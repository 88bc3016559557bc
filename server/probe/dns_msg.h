/* dns_msg: DNS messages (RFC 1035) for the DNS prober: building one query and parsing a
 * response, as pure functions over bytes.
 *
 * Query: 12-byte header (id, flags with RD as asked, QDCOUNT 1), the question name as
 * length-prefixed labels ending in a zero byte, QTYPE, QCLASS IN (1). No EDNS.
 * Response: header, the questions skipped, then every resource record of the answer,
 * authority and additional sections (name, type, class, TTL, RDATA). Names may use
 * compression pointers (RFC 1035 4.1.4); a pointer must point backwards, so loops are
 * impossible; names are at most 255 bytes as text. The parser never reads outside the
 * message; every failure is VG_EINVAL with the byte offset. A fuzz target
 * (tests/fuzz/dns_msg.c) holds it to that.
 *
 * Record text (dns_rr_text) follows the zone-file form that miekg/dns prints and the
 * blackbox exporter matches regexes against: "name.\tTTL\tIN\tTYPE\trdata", rdata for
 * A, AAAA, NS, CNAME, PTR, MX, TXT, SOA and SRV, and RFC 3597's "\# len hex" otherwise.
 * Thread-safe, no allocation. */
#ifndef DNS_MSG_H
#define DNS_MSG_H

#include "../../storage/base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_NAME 256   /* text form with the final dot and NUL */
#define DNS_MAX_RRS 64     /* records kept per response (all sections); more are counted */
#define DNS_TYPE_SOA 6

enum dns_section { DNS_ANSWER, DNS_AUTHORITY, DNS_ADDITIONAL };

struct dns_rr {
    enum dns_section section;
    char name[DNS_MAX_NAME];  /* "example.com." ("." for the root) */
    uint16_t type, klass;
    uint32_t ttl;
    size_t rdata_off;         /* offset of RDATA in the message */
    uint16_t rdlen;
};

struct dns_response {
    uint16_t id;
    bool qr, tc, rd, ra;
    unsigned opcode, rcode;
    uint16_t qdcount, ancount, nscount, arcount;
    struct dns_rr rr[DNS_MAX_RRS]; /* in message order */
    size_t nrr;                    /* min(total records, DNS_MAX_RRS) */
};

/* Writes a query for name ("example.com" or "example.com.") into buf. *len gets its
 * size. 0, VG_EINVAL (empty label, label over 63 bytes, name over 253 bytes) or
 * VG_ETOOLARGE when cap is too small. */
int dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                    bool rd, size_t *len, struct vg_err *err);

/* Parses a whole response. 0 or VG_EINVAL ("offset N: ..."). */
int dns_parse_response(const uint8_t *msg, size_t len, struct dns_response *out,
                       struct vg_err *err);

/* The zone-file text of rr (see above) into out (cap bytes, always NUL-terminated,
 * truncated when small). 0, or VG_EINVAL when its RDATA is malformed. */
int dns_rr_text(const uint8_t *msg, size_t len, const struct dns_rr *rr, char *out, size_t cap,
                struct vg_err *err);

/* "A" -> 1, "AAAA" -> 28, ... (case-insensitive); 0 when unknown. */
uint16_t dns_type_from_name(const char *name);
/* 1 -> "A", ...; NULL when not in the table. */
const char *dns_type_name(uint16_t type);
/* "NOERROR" -> 0, "NXDOMAIN" -> 3, ...; -1 when unknown. */
int dns_rcode_from_name(const char *name);

#endif
