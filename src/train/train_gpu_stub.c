/* train_gpu_stub.c — train_gpu.h in a build without the CUDA backend: asking for a GPU
 * says so instead of failing later. */
#ifndef MAMBAC_HAVE_CUDA
#include "core/error.h"
#include "train/train_gpu.h"

mambac_status mc_gtrain_new(const mc_params *P, const char *device, const char *precision, int64_t B, int64_t L,
                            mc_gtrain **out, mambac_error *err) {
    (void)P, (void)precision, (void)B, (void)L;
    *out = NULL;
    return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "training on '%s': this build of mambac has no CUDA backend (nvcc was not found when it was built)",
                   device ? device : "");
}
void mc_gtrain_free(mc_gtrain *g) { (void)g; }
mambac_status mc_gtrain_probe(const char *device, mambac_error *err) {
    return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "training on '%s': this build of mambac has no CUDA backend (nvcc was not found when it was built)",
                   device ? device : "");
}
static mambac_status none(mambac_error *err) { return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "no CUDA backend in this build"); }
mambac_status mc_gtrain_set_moments(mc_gtrain *g, const mc_adamw *o, mambac_error *err) { return (void)g, (void)o, none(err); }
mambac_status mc_gtrain_download(mc_gtrain *g, mc_params *P, mc_adamw *o, mambac_error *err) {
    return (void)g, (void)P, (void)o, none(err);
}
mambac_status mc_gtrain_grads(mc_gtrain *g, float *dst, mambac_error *err) { return (void)g, (void)dst, none(err); }
mambac_status mc_gtrain_zero_grad(mc_gtrain *g, mambac_error *err) { return (void)g, none(err); }
mambac_status mc_gtrain_step(mc_gtrain *g, const int32_t *ids, int64_t nb, int backward, float scale, double *loss,
                             mambac_error *err) {
    return (void)g, (void)ids, (void)nb, (void)backward, (void)scale, (void)loss, none(err);
}
mambac_status mc_gtrain_step_targets(mc_gtrain *g, const int32_t *ids, const int32_t *targets, int64_t nb, int backward,
                                     float scale, double *loss, mambac_error *err) {
    return (void)g, (void)ids, (void)targets, (void)nb, (void)backward, (void)scale, (void)loss, none(err);
}
mambac_status mc_gtrain_update(mc_gtrain *g, mc_adamw *o, double clip, float lr, double *grad_norm, mambac_error *err) {
    return (void)g, (void)o, (void)clip, (void)lr, (void)grad_norm, none(err);
}
#else
typedef int mc_train_gpu_stub_unused;
#endif
