/* Fuzz target for the Jolokia bulk-read response decoder (server/collect/jolokia.c):
 * jolokia_decode must refuse or decode any body without crashing, and every sample it
 * hands on must carry a valid metric name and valid, unique label names (what the store
 * then checks with ingest_check_labels). Input: a response body as a Jolokia agent sends
 * it to POST /jolokia. */
#include "../../server/collect/jolokia.h"
#include "../../server/ingest/ingest.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

static int check_sample(void *ud, const char *name, const struct label *ls, size_t nl,
                        double v)
{
    size_t *n = ud;
    (void)v;
    FUZZ_CHECK(ingest_valid_metric_name(vg_str_c(name)));
    for (size_t i = 0; i < nl; i++)
        FUZZ_CHECK(ingest_valid_label_name(ls[i].name));
    return ++*n >= 10000; /* stop like a full sample set does */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jolokia_stats st;
    struct vg_err err;
    size_t n = 0;
    if (jolokia_decode((const char *)data, size, check_sample, &n, &st, &err) == 0) {
        FUZZ_CHECK(st.samples == n);
        FUZZ_CHECK(st.errors <= st.entries);
        FUZZ_CHECK(memchr(st.first_error, '\0', sizeof st.first_error) != NULL);
    } else {
        FUZZ_CHECK(err.code < 0 && err.msg[0]);
    }
    return 0;
}
