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

/* dx[n][c][h][w] (+)= the column entries that read it: a gather, so deterministic.
 * global (N * C): one input plane per work-item. The output rows oh touching h satisfy
 * oh*stride <= h+pad < oh*stride + KH. */
__kernel void conv_col2im(__global const float *col, __global float *dx, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW, const int accumulate) {
    const int nc = get_global_id(0);
    if (nc >= N * C) return;
    const int c = nc % C, n = nc / C;
    const int P = OH * OW;
    const size_t NP = (size_t)N * P;
    __global const float *base = col + (size_t)n * P;
    __global float *out = dx + (size_t)nc * H * W;
    for (int h = 0; h < H; h++) {
        const int th = h + pad;
        const int oh_lo = th >= KH ? (th - KH) / stride + 1 : 0, oh_hi = min(th / stride, OH - 1);
        for (int w = 0; w < W; w++) {
            const int tw = w + pad;
            const int ow_lo = tw >= KW ? (tw - KW) / stride + 1 : 0;
            const int ow_hi = min(tw / stride, OW - 1);
            float acc = 0.0f;
            for (int oh = oh_lo; oh <= oh_hi; oh++) {
                const int i = th - oh * stride;
                for (int ow = ow_lo; ow <= ow_hi; ow++) {
                    const int k = (c * KH + i) * KW + (tw - ow * stride);
                    acc += base[(size_t)k * NP + oh * OW + ow];
                }
            }
            out[h * W + w] = accumulate ? out[h * W + w] + acc : acc;
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
                             const int OC, const int P) {
    const int oc = get_global_id(0);
    if (oc >= OC) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < P; p++) acc += dy[((size_t)n * OC + oc) * P + p];
    db[oc] = acc;
}
