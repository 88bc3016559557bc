/* federate: GET /federate?match[]=<selector>, Prometheus's federation endpoint.
 *
 * Answers with the latest sample (at or before now, within the 5-minute lookback) of
 * every series matched by any match[] selector, in the text format 0.0.4, grouped by
 * metric family with a # TYPE line each. A missing or unparsable match[] is a 400 with
 * a Prometheus-style JSON error. The handler is thread-safe (it only reads the TSDB). */
#ifndef FEDERATE_H
#define FEDERATE_H

#include "../vigil.h"

extern const struct vigil_module mod_federate;

#endif
