/* targets: the Prometheus HTTP API's scrape target endpoints over scrape/scrape.h, with
 * the SNMP devices and Jolokia agents of collect/ listed as active targets too.
 *
 *   GET /api/v1/targets?state=active|dropped|any&scrapePool=job
 *     {"status":"success","data":{"activeTargets":[{"discoveredLabels":{...},
 *      "labels":{...},"scrapePool":"job","scrapeUrl":"http://h:9100/metrics",
 *      "globalUrl":"http://h:9100/metrics","lastError":"","lastScrape":"<RFC 3339>",
 *      "lastScrapeDuration":0.012,"health":"up","scrapeInterval":"15s",
 *      "scrapeTimeout":"10s"}],"droppedTargets":[{"discoveredLabels":{...}}]}}
 *   GET /api/v1/targets/metadata?match_target={job="x"}&metric=name&limit=N
 *     {"status":"success","data":[{"target":{labels},"metric":"m","type":"gauge",
 *      "help":"...","unit":""}]}
 * With nothing scraped or polled the lists are empty. Handlers are thread-safe. */
#ifndef API_TARGETS_H
#define API_TARGETS_H

#include "../vigil.h"

extern const struct vigil_module mod_targets_api;

#endif
