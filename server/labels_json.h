/* labels_json: a label set as a JSON object, {"name":"value",...}, in the order given
 * (callers pass labels sorted by name, as struct label sets are kept). The one writer
 * the Prometheus and Loki APIs (prometheus_json_labels), the alert notifiers (webhook,
 * Alertmanager) and the rule state file share, so a label set reads the same wherever
 * Vigil writes it. Below both the API and the rules layers: it knows only labels and
 * vg_buf. */
#ifndef LABELS_JSON_H
#define LABELS_JSON_H

#include "../storage/base/vg_buf.h"
#include "../storage/tsdb/labels.h"

#include <stddef.h>

/* Appends the n labels of ls to b as one JSON object; names and values are escaped as
 * JSON strings (vg_buf_json_str). n == 0 writes {}. Out of memory sets b's failed flag,
 * as every vg_buf append does. Pure: thread-safe for distinct buffers. */
void labels_json_put(struct vg_buf *b, const struct label *ls, size_t n);

#endif
