/* modules: the registry of receivers and API families. Adding one is a new file and a
 * new row here; the order is the routing order (first match wins). */
#include "vigil.h"

#include "api/health.h"

const struct vigil_module *const vigil_modules[] = {
    &mod_health,
};

const size_t vigil_nmodules = sizeof vigil_modules / sizeof vigil_modules[0];
