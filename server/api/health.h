/* health: liveness and readiness (/-/healthy, /-/ready, as Prometheus) and the admin
 * endpoint that compacts the TSDB (POST /api/v1/admin/tsdb/compact). */
#ifndef HEALTH_H
#define HEALTH_H

#include "../vigil.h"

extern const struct vigil_module mod_health;

#endif
