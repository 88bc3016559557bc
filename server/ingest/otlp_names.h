/* otlp_names: OpenTelemetry names and values to Prometheus names and label values, as the
 * OpenTelemetry specification (compatibility/prometheus_and_openmetrics.md) and
 * Prometheus's OTLP receiver (UnderscoreEscapingWithSuffixes) do it.
 *
 * Metric names, suffixes on: the name is split into tokens at every character outside
 * [a-zA-Z0-9:]; the UCUM unit "main/per" adds "<main>" and "per_<per>" through the
 * standard unit map ("s" -> seconds, "By" -> bytes, "1" -> nothing, "%" -> percent, ...;
 * units with {annotations} add nothing) unless those words already appear in a row in the
 * name; counters get "total" (moved to the end when already present), gauges with unit
 * "1" get "ratio" likewise; tokens are joined by "_", and a leading digit gets "_".
 * Suffixes off: only runs of characters outside [a-zA-Z0-9:_] become "_" (plus the digit
 * rule). A name that ends up empty or all "_" is refused (NULL).
 *
 * Label names: characters outside [a-zA-Z0-9] become "_" with runs of "_" collapsed
 * (a "__x__" name keeps its outer underscores), a leading digit gets "key_", and a name
 * that starts with "__" (reserved for Prometheus and Vigil, e.g. __name__) gets "key" in
 * front. Nothing but "_" left: refused (NULL).
 *
 * All functions are pure and thread-safe; returned strings live in the given arena. */
#ifndef OTLP_NAMES_H
#define OTLP_NAMES_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/tsdb.h"

#include "otlp_common.pb-c.h"

#include <stdbool.h>

/* The Prometheus name of an OTLP metric. kind is the Prometheus type it becomes (COUNTER
 * adds _total; GAUGE with unit "1" adds _ratio unless from_sum, as Prometheus only does
 * that for OTLP gauges). NULL when nothing valid remains or a is exhausted. */
const char *otlp_names_metric(struct vg_arena *a, const char *name, const char *unit,
                              enum tsdb_metric_type kind, bool from_sum, bool add_suffixes);

/* The Prometheus unit word of a UCUM unit ("s" -> "seconds", "By/s" -> "bytes_per_second",
 * "1" -> ""), used as metric metadata. */
struct vg_str otlp_names_unit(struct vg_arena *a, const char *unit);

/* The label name for an attribute key of len bytes; NULL when nothing valid remains or a
 * is exhausted. */
const char *otlp_names_label(struct vg_arena *a, const char *key, size_t len);

/* Appends the label-value text of an attribute value, as OpenTelemetry's AsString: strings
 * as they are, ints and bools as text, doubles as JSON numbers, bytes as base64, arrays
 * and maps as JSON (nesting deeper than 16 levels becomes null). NULL v appends nothing. */
void otlp_names_value(struct vg_buf *b, const Opentelemetry__Proto__Common__V1__AnyValue *v);

#endif
