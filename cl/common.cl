/* Prelude: device functions shared by the kernel files, prepended to every program's source (by
 * tools/embed-cl.sh, or by program.c under RAMP_CL_KERNEL_DIR), so it is part of every cache key.
 * Functions only, no kernels. No FP_CONTRACT pragma here: each file keeps its own contraction
 * setting, and the float helpers below contract exactly as the copies they replace did. */

/* ---- rows of logits ------------------------------------------------------------------------ */

/* Index of the largest of K logits; the first maximum wins. */
static inline int row_argmax(__global const float *z, const int K) {
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[arg]) arg = k;
    return arg;
}

/* log-sum-exp of K logits, shifted by mx (their maximum, however the caller found it). */
static inline float row_lse_at(__global const float *z, const int K, const float mx) {
    float s = 0.0f;
    for (int k = 0; k < K; k++) s += exp(z[k] - mx);
    return mx + log(s);
}

/* log-sum-exp of K logits. */
static inline float row_lse(__global const float *z, const int K) {
    float mx = z[0];
    for (int k = 1; k < K; k++) mx = fmax(mx, z[k]);
    return row_lse_at(z, K, mx);
}

/* Gradient of the cross-entropy with label y: dz = (softmax(z) - onehot(y)) * scale. */
static inline void ce_grad_row(__global const float *z, const int y, const int K, const float lse,
                               const float scale, __global float *dz) {
    for (int k = 0; k < K; k++) dz[k] = (exp(z[k] - lse) - (k == y ? 1.0f : 0.0f)) * scale;
}

/* KL(p || q) for p, q the softmaxes of logit rows zp, zq with log-sum-exps lp, lq. */
static inline float kl_rows(__global const float *zp, const float lp, __global const float *zq,
                            const float lq, const int K) {
    float kl = 0.0f;
    for (int k = 0; k < K; k++) {
        const float lpp = zp[k] - lp, lpq = zq[k] - lq;
        kl += exp(lpp) * (lpp - lpq);
    }
    return kl;
}

/* Gradients of scale * KL(p || q), kl = kl_rows(...):
 *   dzq = scale * (q - p),  dzp = scale * p * (log p - log q - kl),
 * dzp added to (accumulate) or stored. Each update stays one expression: that is what the
 * compiler may contract, as in the copies this replaces. */
static inline void kl_rows_grad(__global const float *zp, const float lp,
                                __global const float *zq, const float lq, const int K,
                                const float kl, const float scale, __global float *dzp,
                                __global float *dzq, const int accumulate) {
    for (int k = 0; k < K; k++) {
        const float lpp = zp[k] - lp, lpq = zq[k] - lq;
        const float pp = exp(lpp), pq = exp(lpq);
        dzq[k] = scale * (pq - pp);
        if (accumulate)
            dzp[k] += scale * pp * (lpp - lpq - kl);
        else
            dzp[k] = scale * pp * (lpp - lpq - kl);
    }
}

/* ---- rows of samples ----------------------------------------------------------------------- */

static inline void copy_row(__global float *dst, __global const float *src, const int d) {
    for (int j = 0; j < d; j++) dst[j] = src[j];
}

/* Element-wise attack kernels run one work-item per chunk of ATK_CHUNK consecutive coordinates
 * of a row (global size B * C, C = ceil(d / ATK_CHUNK)): no per-element integer division, and
 * per-sample sums go through per-chunk partials added in a fixed order (deterministic). The host
 * side (src/attack) uses the same 256. */
#define ATK_CHUNK 256

/* The chunk handled by work-item `i`: sample *b, coordinates [*j0, *j1). 0 when out of range. */
static inline int atk_chunk(const int i, const int C, const int B, const int d, int *b, int *j0,
                            int *j1) {
    if (i >= B * C) return 0;
    *b = i / C;
    const int c = i - *b * C;
    *j0 = c * ATK_CHUNK;
    *j1 = min(d, *j0 + ATK_CHUNK);
    return 1;
}

/* Sample b's total of its C per-chunk partials, added in chunk order. */
static inline float atk_row_total(__global const float *part, const int b, const int C) {
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += part[b * C + c];
    return s;
}

/* LSD radix sort of n uint keys, ascending, between two scratch areas; returns the one that
 * holds the result. */
static inline __global uint *atk_radix_sort(__global uint *src, __global uint *dst,
                                            const uint n) {
    uint hist[256];
    for (int shift = 0; shift < 32; shift += 8) {
        for (int i = 0; i < 256; i++) hist[i] = 0;
        for (uint i = 0; i < n; i++) hist[(src[i] >> shift) & 255u]++;
        if (hist[(src[0] >> shift) & 255u] == n) continue; /* one digit: order unchanged */
        uint run = 0;
        for (int i = 0; i < 256; i++) {
            const uint h = hist[i];
            hist[i] = run;
            run += h;
        }
        for (uint i = 0; i < n; i++) {
            const uint k = src[i];
            dst[hist[(k >> shift) & 255u]++] = k;
        }
        __global uint *t = src;
        src = dst;
        dst = t;
    }
    return src;
}
