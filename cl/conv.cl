/* Convolution as GEMM. Columns are laid out col[k][n*P + p] (k = (c*KH + i)*KW + j, P = OH*OW),
 * so one GEMM covers the whole batch: Z[OC][N*P] = W[OC][K] x col. Z is scattered to NCHW.
 */

/* One work-item per plane or row, looping over contiguous addresses: PoCL then runs large
 * work-groups and the index arithmetic (divisions) happens once per plane, not per element. */

/* global (K * N): work-item (k, n) writes the P = OH*OW columns entries of row k for image n. */
__kernel void conv_im2col(__global const float *x, __global float *col, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW) {
    const int g = get_global_id(0);
    if (g >= N * C * KH * KW) return;
    const int n = g % N, k = g / N;
    const int j = k % KW, i = (k / KW) % KH, c = k / (KW * KH);
    __global const float *xp = x + (size_t)(n * C + c) * H * W;
    __global float *out = col + (size_t)k * N * OH * OW + (size_t)n * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
        const int h = oh * stride - pad + i;
        const int inside = h >= 0 && h < H;
        for (int ow = 0; ow < OW; ow++) {
            const int w = ow * stride - pad + j;
            out[oh * OW + ow] = inside && w >= 0 && w < W ? xp[h * W + w] : 0.0f;
        }
    }
}

/* dx[n][c] (+)= the column entries that read it. One input plane per work-item, global (N * C):
 * for each kernel offset (i, j) the column row is read contiguously and added into the plane,
 * which stays in cache. A fixed loop order and no sharing between work-items: deterministic. */
__kernel void conv_col2im(__global const float *col, __global float *dx, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW, const int accumulate) {
    const int nc = get_global_id(0);
    if (nc >= N * C) return;
    const int c = nc % C, n = nc / C;
    const int P = OH * OW;
    const size_t NP = (size_t)N * P;
    __global float *out = dx + (size_t)nc * H * W;
    if (!accumulate)
        for (int q = 0; q < H * W; q++) out[q] = 0.0f;
    for (int i = 0; i < KH; i++)
        for (int j = 0; j < KW; j++) {
            __global const float *src = col + (size_t)((c * KH + i) * KW + j) * NP + (size_t)n * P;
            /* output columns ow whose input column w = ow*stride - pad + j lies inside */
            const int ow_lo = pad - j > 0 ? (pad - j + stride - 1) / stride : 0;
            const int ow_hi = min(OW, (W - 1 + pad - j) / stride + 1);
            for (int oh = 0; oh < OH; oh++) {
                const int h = oh * stride - pad + i;
                if (h < 0 || h >= H) continue;
                const int base = h * W - pad + j; /* + ow * stride: inside the row */
                __global const float *srow = src + oh * OW;
                for (int ow = ow_lo; ow < ow_hi; ow++) out[base + ow * stride] += srow[ow];
            }
        }
}

/* y[n][oc][p] = Z[oc][n*P + p] (+ bias[oc]); global (N * OC), one plane per work-item. */
__kernel void conv_scatter(__global const float *z, __global float *y, __global const float *bias,
                           const int has_bias, const int N, const int OC, const int P) {
    const int g = get_global_id(0);
    if (g >= N * OC) return;
    const int oc = g % OC, n = g / OC;
    const float b = has_bias ? bias[oc] : 0.0f;
    __global const float *src = z + (size_t)oc * N * P + (size_t)n * P;
    __global float *dst = y + (size_t)g * P;
    for (int p = 0; p < P; p++) dst[p] = src[p] + b;
}

/* dZ[oc][n*P + p] = dy[n][oc][p]; global (N * OC). */
__kernel void conv_gather(__global const float *dy, __global float *dz, const int N, const int OC,
                          const int P) {
    const int g = get_global_id(0);
    if (g >= N * OC) return;
    const int oc = g % OC, n = g / OC;
    __global const float *src = dy + (size_t)g * P;
    __global float *dst = dz + (size_t)oc * N * P + (size_t)n * P;
    for (int p = 0; p < P; p++) dst[p] = src[p];
}

/* db[oc] = sum over n, p of dy[n][oc][p], in a fixed order. */
__kernel void conv_bias_grad(__global const float *dy, __global float *db, const int N,
                             const int OC, const int P, const int accumulate) {
    const int oc = get_global_id(0);
    if (oc >= OC) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < P; p++) acc += dy[((size_t)n * OC + oc) * P + p];
    db[oc] = accumulate ? db[oc] + acc : acc;
}
