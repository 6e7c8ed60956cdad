/* params_io.c — parameter sets to and from safetensors files under their transformers
 * names: the weights of a checkpoint, its optimizer moments, and the gradients
 * `mambac grad` writes (with the loss first). Atomic writes (temp + rename). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "train/train.h"

/* which: 0 weights, 1 gradients, 2 first moments, 3 second moments (from base). */
static const float *values(const mc_params *P, const mc_param *p, int which, const float *base) {
    const int64_t off = p->w - P->w;
    return which == 0 ? p->w : which == 1 ? p->g : base + off;
}

mambac_status mc_params_write(const mc_params *P, const char *path, int which, const float *base, const float *loss,
                              mambac_error *err) {
    const size_t n = P->n + (loss ? 1 : 0);
    mc_st_decl *d = calloc(n, sizeof *d);
    if (!d) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    size_t k = 0;
    if (loss) {
        snprintf(d[k].name, sizeof d[k].name, "loss");
        d[k].dtype = MAMBAC_DTYPE_F32, d[k].ndim = 1, d[k].shape[0] = 1;
        k++;
    }
    for (size_t i = 0; i < P->n; i++, k++) {
        snprintf(d[k].name, sizeof d[k].name, "%s", P->v[i].name);
        d[k].dtype = MAMBAC_DTYPE_F32;
        d[k].ndim = P->v[i].ndim;
        for (int j = 0; j < P->v[i].ndim; j++) d[k].shape[j] = P->v[i].shape[j];
    }
    mc_st_writer w;
    mambac_status st = mc_st_writer_open(&w, path, d, n, err);
    if (st == MAMBAC_OK && loss) st = mc_st_writer_put(&w, loss, 1, err);
    for (size_t i = 0; i < P->n && st == MAMBAC_OK; i++)
        st = mc_st_writer_put(&w, values(P, &P->v[i], which, base), (size_t)P->v[i].n, err);
    if (st == MAMBAC_OK) st = mc_st_writer_close(&w, err);
    else mc_st_writer_abort(&w);
    free(d);
    return st;
}

mambac_status mc_params_read(const mc_params *P, const char *path, float *dst_base, mambac_error *err) {
    mc_file f;
    mc_tensor_list l = {0};
    mambac_status st = mc_file_map(path, &f, err);
    if (st != MAMBAC_OK) return st;
    st = mc_safetensors_parse(f.data, f.size, path, &l, err);
    for (size_t i = 0; i < P->n && st == MAMBAC_OK; i++) {
        const mc_param *p = &P->v[i];
        const mc_tensor_entry *e = mc_tensor_list_find(&l, p->name);
        if (!e || e->elem != MC_ELEM_F32 || e->nbytes != (size_t)p->n * 4)
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' missing or not float32 of %lld values", path, p->name,
                         (long long)p->n);
        else
            memcpy(dst_base + (p->w - P->w), e->data, e->nbytes);
    }
    if (st == MAMBAC_OK && l.n != P->n)
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: %zu tensors, the model has %zu", path, l.n, P->n);
    mc_tensor_list_free(&l);
    mc_file_unmap(&f);
    return st;
}
