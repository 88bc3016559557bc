/* Fuzz target for server/probe/dns_msg.c: arbitrary bytes as a DNS response. The parser
 * must never read outside the input: every parsed record's RDATA lies inside it, names
 * are NUL-terminated and end in a dot, and the text of every record is written within
 * its buffer. Any violation aborts (AddressSanitizer catches the reads). */
#include "../../server/probe/dns_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dns_response r;
    struct vg_err err;
    if (dns_parse_response(data, size, &r, &err) < 0)
        return 0;
    if (r.nrr > DNS_MAX_RRS)
        abort();
    for (size_t i = 0; i < r.nrr; i++) {
        const struct dns_rr *rr = &r.rr[i];
        size_t nl = strnlen(rr->name, DNS_MAX_NAME);
        if (nl == 0 || nl >= DNS_MAX_NAME || rr->name[nl - 1] != '.')
            abort();
        if (rr->rdata_off > size || rr->rdlen > size - rr->rdata_off)
            abort();
        char text[300];
        text[sizeof text - 1] = 'x';
        dns_rr_text(data, size, rr, text, sizeof text - 1, &err);
        if (strnlen(text, sizeof text - 1) >= sizeof text - 1 || text[sizeof text - 1] != 'x')
            abort();
    }
    return 0;
}
