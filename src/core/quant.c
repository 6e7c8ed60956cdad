/* quant.c — scalar block quantization and dequantization (layouts in quant.h). */
#include "core/quant.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"

static float rd_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return mc_f16_to_f32(h);
}

static void wr_f16(uint8_t *p, float f) {
    uint16_t h = mc_f32_to_f16(f);
    memcpy(p, &h, 2);
}

static int nearest_int(float f) { return (int)lrintf(f); }

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- dequantization ------------------------------------------------------- */

static void deq_q8_0(float *y, const uint8_t *b) {
    const float d = rd_f16(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

static void deq_q4_0(float *y, const uint8_t *b) {
    const float d = rd_f16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 0xF) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

static void deq_q5_0(float *y, const uint8_t *b) {
    const float d = rd_f16(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        const int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

static void deq_q4_K(float *y, const uint8_t *b) {
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    for (int g = 0; g < 4; g++, q += 32, y += 64) {
        uint8_t sc0, m0, sc1, m1;
        mc_q4k_scale_min(scales, 2 * g, &sc0, &m0);
        mc_q4k_scale_min(scales, 2 * g + 1, &sc1, &m1);
        for (int l = 0; l < 32; l++) {
            y[l] = d * sc0 * (float)(q[l] & 0xF) - dmin * m0;
            y[l + 32] = d * sc1 * (float)(q[l] >> 4) - dmin * m1;
        }
    }
}

static void deq_q6_K(float *y, const uint8_t *b) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = rd_f16(b + 208);
    for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * (float)q1;
            y[l + 32] = d * sc[is + 2] * (float)q2;
            y[l + 64] = d * sc[is + 4] * (float)q3;
            y[l + 96] = d * sc[is + 6] * (float)q4;
        }
    }
}

void mc_dequantize_row(float *dst, const void *src, mambac_dtype t, int64_t n) {
    const uint8_t *p = src;
    const int64_t bs = mc_dtype_block(t), bb = mc_dtype_block_bytes(t);
    for (int64_t i = 0; i < n / bs; i++, p += bb, dst += bs) {
        switch (t) {
        case MAMBAC_DTYPE_Q8_0: deq_q8_0(dst, p); break;
        case MAMBAC_DTYPE_Q4_0: deq_q4_0(dst, p); break;
        case MAMBAC_DTYPE_Q5_0: deq_q5_0(dst, p); break;
        case MAMBAC_DTYPE_Q4_K: deq_q4_K(dst, p); break;
        case MAMBAC_DTYPE_Q6_K: deq_q6_K(dst, p); break;
        default: mc_convert_to_f32(dst, p, t, (size_t)bs); break;
        }
    }
}

/* ---- quantization --------------------------------------------------------- */

static void quant_q8_0(uint8_t *b, const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void quant_q4_0(uint8_t *b, const float *x) {
    /* The scale maps the value of largest magnitude to -8, keeping its sign, so the
     * asymmetric range [-8, 7] is used in full on the side that needs it. */
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    for (int j = 0; j < 16; j++) {
        const int lo = clampi((int)(x[j] * id + 8.5f), 0, 15), hi = clampi((int)(x[j + 16] * id + 8.5f), 0, 15);
        b[2 + j] = (uint8_t)(lo | (hi << 4));
    }
}

/* Scale and min for n values quantized to [0, nmax] minimizing the weighted squared
 * error: a grid of candidate scales around (max - min) / nmax, each refined by the
 * closed-form least-squares fit of (scale, min) to the rounded levels. The min is
 * kept <= 0 (the format stores -min as a non-negative number). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min) {
    float lo = x[0], hi = x[0], sum_w = 0.0f, sum_x = 0.0f;
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *neg_min = -lo;
        return 0.0f;
    }
    float iscale = nmax / (hi - lo), scale = 1.0f / iscale, min = lo, best = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        const float diff = scale * L[i] + min - x[i];
        best += w[i] * diff * diff;
    }
    uint8_t aux[256];
    for (int step = 0; step <= 20; step++) {
        iscale = (-1.0f + 0.1f * step + nmax) / (hi - lo);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(nearest_int(iscale * (x[i] - lo)), 0, nmax);
            aux[i] = (uint8_t)l;
            sl += w[i] * l;
            sl2 += w[i] * l * l;
            sxl += w[i] * l * x[i];
        }
        const float D = sum_w * sl2 - sl * sl;
        if (D <= 0) continue;
        float s = (sum_w * sxl - sum_x * sl) / D, m = (sl2 * sum_x - sl * sxl) / D;
        if (m > 0) {
            m = 0;
            s = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = s * aux[i] + m - x[i];
            err += w[i] * diff * diff;
        }
        if (err < best) {
            memcpy(L, aux, (size_t)n);
            best = err;
            scale = s;
            min = m;
        }
    }
    *neg_min = -min;
    return scale;
}

static void quant_q4_K(uint8_t *b, const float *x) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    uint8_t L[256];
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float ss = 0;
        for (int l = 0; l < 32; l++) ss += xs[l] * xs[l];
        const float av = sqrtf(ss / 32);
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]); /* weigh large values more */
        scales[j] = fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j]);
        max_scale = fmaxf(max_scale, scales[j]);
        max_min = fmaxf(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0, inv_min = max_min > 0 ? 63.0f / max_min : 0;
    uint8_t *sc = b + 4;
    memset(sc, 0, 12);
    for (int j = 0; j < 8; j++) {
        const int ls = clampi(nearest_int(inv_scale * scales[j]), 0, 63), lm = clampi(nearest_int(inv_min * mins[j]), 0, 63);
        if (j < 4) {
            sc[j] = (uint8_t)ls;
            sc[j + 4] = (uint8_t)lm;
        } else {
            sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    wr_f16(b, max_scale / 63.0f);
    wr_f16(b + 2, max_min / 63.0f);
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    /* Re-round every value against the scales as stored (6-bit, f16). */
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        mc_q4k_scale_min(sc, j, &s, &m);
        const float dj = d * s, mj = dmin * m;
        if (dj == 0.0f) continue;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + mj) / dj), 0, 15);
    }
    uint8_t *q = b + 16;
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) q[32 * g + l] = (uint8_t)(L[64 * g + l] | (L[64 * g + 32 + l] << 4));
}

int mc_quantize_row(void *dst, const float *src, mambac_dtype t, int64_t n) {
    uint8_t *p = dst;
    const int64_t bs = mc_dtype_block(t), bb = mc_dtype_block_bytes(t);
    if (t != MAMBAC_DTYPE_Q8_0 && t != MAMBAC_DTYPE_Q4_0 && t != MAMBAC_DTYPE_Q4_K) return 0;
    for (int64_t i = 0; i < n / bs; i++, p += bb, src += bs) {
        if (t == MAMBAC_DTYPE_Q8_0) quant_q8_0(p, src);
        else if (t == MAMBAC_DTYPE_Q4_0) quant_q4_0(p, src);
        else quant_q4_K(p, src);
    }
    return 1;
}
