/* Tests server/probe/dns_msg.c: the query bytes, parsing a response with compressed
 * names in every section, record text for the common types, the type and rcode tables,
 * and refusals: truncated headers and records, forward and looping pointers, names over
 * 255 bytes, bad labels in queries. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/probe/dns_msg.h"

static struct vg_err err;

Test(dns_msg, query_bytes)
{
    uint8_t buf[512];
    size_t len;
    cr_assert_eq(dns_build_query(buf, sizeof buf, 0x1234, "www.example.com.", 28, true, &len, &err), 0);
    static const uint8_t want[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                    3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                    3, 'c', 'o', 'm', 0, 0, 28, 0, 1 };
    cr_assert_eq(len, sizeof want);
    cr_assert_arr_eq(buf, want, sizeof want);
    cr_assert_eq(dns_build_query(buf, sizeof buf, 1, "a..b", 1, true, &len, &err), VG_EINVAL);
    char big[80];
    memset(big, 'x', 70);
    big[70] = '\0';
    cr_assert_eq(dns_build_query(buf, sizeof buf, 1, big, 1, true, &len, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "63"), "%s", err.msg);
    cr_assert_eq(dns_build_query(buf, 10, 1, "a.b", 1, true, &len, &err), VG_ETOOLARGE);
    cr_assert_eq(dns_build_query(buf, sizeof buf, 1, ".", 1, false, &len, &err), 0, "the root");
    cr_assert_eq(len, 17);
    cr_assert_eq(buf[2], 0, "RD off");
}

/* A response to "example.com A": answer A 192.0.2.1 and CNAME, authority SOA, additional
 * AAAA, names compressed against the question at offset 12. */
static size_t response(uint8_t *m)
{
    size_t o = 0;
    static const uint8_t hdr[] = { 0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 2, 0, 1, 0, 1 };
    memcpy(m, hdr, sizeof hdr);
    o = sizeof hdr;
    static const uint8_t q[] = { 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1 };
    memcpy(m + o, q, sizeof q);
    o += sizeof q;
    static const uint8_t a[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1 };
    memcpy(m + o, a, sizeof a);
    o += sizeof a;
    static const uint8_t cname[] = { 3, 'w', 'w', 'w', 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2,
                                     0xc0, 12 };
    memcpy(m + o, cname, sizeof cname);
    o += sizeof cname;
    static const uint8_t soa[] = { 0xc0, 12, 0, 6, 0, 1, 0, 0, 1, 0, 0, 32,
                                   2, 'n', 's', 0xc0, 12, 4, 'h', 'o', 's', 't', 0xc0, 12,
                                   0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4 };
    memcpy(m + o, soa, sizeof soa);
    o += sizeof soa;
    static const uint8_t aaaa[] = { 0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 5, 0, 16,
                                    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    memcpy(m + o, aaaa, sizeof aaaa);
    return o + sizeof aaaa;
}

Test(dns_msg, parse_and_text)
{
    uint8_t m[512];
    size_t n = response(m);
    struct dns_response r;
    cr_assert_eq(dns_parse_response(m, n, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, 0xabcd);
    cr_assert(r.qr && r.rd && r.ra);
    cr_assert_eq(r.rcode, 0);
    cr_assert_eq(r.ancount, 2);
    cr_assert_eq(r.nrr, 4);
    cr_assert_str_eq(r.rr[0].name, "example.com.");
    cr_assert_eq(r.rr[0].ttl, 3600);
    cr_assert_eq(r.rr[2].section, DNS_AUTHORITY);
    cr_assert_eq(r.rr[3].section, DNS_ADDITIONAL);
    static const char *const want[] = {
        "example.com.\t3600\tIN\tA\t192.0.2.1",
        "www.example.com.\t60\tIN\tCNAME\texample.com.",
        "example.com.\t256\tIN\tSOA\tns.example.com. host.example.com. 42 1 2 3 4",
        "example.com.\t5\tIN\tAAAA\t2001:db8::1",
    };
    char text[256];
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(dns_rr_text(m, n, &r.rr[i], text, sizeof text, &err), 0, "%s", err.msg);
        cr_assert_str_eq(text, want[i]);
    }
    char small[12];
    cr_assert_eq(dns_rr_text(m, n, &r.rr[0], small, sizeof small, &err), 0);
    cr_assert_eq(strlen(small), sizeof small - 1, "truncated, still terminated");
}

Test(dns_msg, malformed)
{
    uint8_t m[512];
    size_t n = response(m);
    struct dns_response r;
    cr_assert_eq(dns_parse_response(m, 11, &r, &err), VG_EINVAL);
    for (size_t cut = 12; cut < n; cut++)
        cr_assert_eq(dns_parse_response(m, cut, &r, &err), VG_EINVAL, "cut at %zu", cut);
    /* a pointer to itself, and one pointing forward */
    uint8_t loop[] = { 0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1 };
    cr_assert_eq(dns_parse_response(loop, sizeof loop, &r, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "point back"), "%s", err.msg);
    uint8_t fwd[] = { 0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 16, 0, 1, 1, 'a', 0, 0 };
    cr_assert_eq(dns_parse_response(fwd, sizeof fwd, &r, &err), VG_EINVAL);
    uint8_t lbl[] = { 0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1 };
    cr_assert_eq(dns_parse_response(lbl, sizeof lbl, &r, &err), VG_EINVAL);
    /* a name of five 63-byte labels: over 255 */
    uint8_t longname[12 + 5 * 64 + 5];
    memset(longname, 0, sizeof longname);
    longname[5] = 1;
    for (int i = 0; i < 5; i++) {
        longname[12 + i * 64] = 63;
        memset(longname + 13 + i * 64, 'a', 63);
    }
    cr_assert_eq(dns_parse_response(longname, sizeof longname, &r, &err), VG_EINVAL);
    /* an A record of 3 bytes parses but has no text */
    uint8_t bad_a[] = { 0, 0, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0,
                        0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3 };
    cr_assert_eq(dns_parse_response(bad_a, sizeof bad_a, &r, &err), 0, "%s", err.msg);
    char text[128];
    cr_assert_eq(dns_rr_text(bad_a, sizeof bad_a, &r.rr[0], text, sizeof text, &err), VG_EINVAL);
}

Test(dns_msg, tables)
{
    cr_assert_eq(dns_type_from_name("aaaa"), 28);
    cr_assert_eq(dns_type_from_name("MX"), 15);
    cr_assert_eq(dns_type_from_name("BOGUS"), 0);
    cr_assert_str_eq(dns_type_name(6), "SOA");
    cr_assert_null(dns_type_name(9999));
    cr_assert_eq(dns_rcode_from_name("NXDOMAIN"), 3);
    cr_assert_eq(dns_rcode_from_name("servfail"), 2);
    cr_assert_eq(dns_rcode_from_name("nope"), -1);
}
