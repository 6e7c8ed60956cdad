/* backend.c — the registry of backends: a name in the model parameters to a table. */
#include "backend/backend.h"

#include <string.h>

#include "core/error.h"

static const mc_backend *const all[] = {
    &mc_backend_cpu,
#ifdef MAMBAC_HAVE_CUDA
    &mc_backend_cuda,
#endif
};

const mc_backend *mc_backend_find(const char *spec, const char **device, mambac_error *err) {
    *device = NULL;
    if (!spec || !*spec) spec = "cpu";
    const char *colon = strchr(spec, ':');
    const size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strlen(all[i]->name) == n && strncmp(all[i]->name, spec, n) == 0) {
            *device = colon ? colon + 1 : NULL;
            return all[i];
        }
    if (n == 4 && strncmp(spec, "cuda", 4) == 0)
        mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "backend '%s': this build of mambac has no CUDA support (configure with -DMAMBAC_CUDA=ON)", spec);
    else
        mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "unknown backend '%s' (known: cpu%s)", spec,
#ifdef MAMBAC_HAVE_CUDA
                ", cuda, cuda:N"
#else
                ""
#endif
        );
    return NULL;
}
