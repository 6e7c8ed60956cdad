/* state.h — the per-sequence recurrent state: for every layer a conv window
 * (C, K-1) followed by the SSM state (Mamba-1 (E, N); Mamba-2 (H, P, N)). `data` is
 * memory of the model's backend (host memory on the CPU, device memory on a GPU): only
 * the backend reads it; everything else goes through the backend's state calls. */
#ifndef MC_STATE_H
#define MC_STATE_H

#include "model/model.h"

struct mambac_state {
    const struct mambac_model *model;
    int64_t n_tokens;
    float *data;
    size_t n_floats;
    size_t conv_floats; /* per layer */
    size_t ssm_floats;  /* per layer */
    int in_batch;       /* marked while a mambac_eval_batch call holds it */
};

static inline float *mc_state_conv(struct mambac_state *s, int layer) {
    return s->data + (size_t)layer * (s->conv_floats + s->ssm_floats);
}
static inline float *mc_state_ssm(struct mambac_state *s, int layer) {
    return mc_state_conv(s, layer) + s->conv_floats;
}

#endif
