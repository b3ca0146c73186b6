/* Convolution as GEMM. Columns are laid out col[k][n*P + p] (k = (c*KH + i)*KW + j, P = OH*OW),
 * so one GEMM covers the whole batch: Z[OC][N*P] = W[OC][K] x col. Z is scattered to NCHW. */

__kernel void conv_im2col(__global const float *x, __global float *col, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW) {
    const int np = get_global_id(0); /* n*P + p */
    const int k = get_global_id(1);
    const int P = OH * OW;
    if (np >= N * P || k >= C * KH * KW) return;
    const int n = np / P, p = np % P;
    const int oh = p / OW, ow = p % OW;
    const int j = k % KW, i = (k / KW) % KH, c = k / (KW * KH);
    const int h = oh * stride - pad + i, w = ow * stride - pad + j;
    float v = 0.0f;
    if (h >= 0 && h < H && w >= 0 && w < W) v = x[((n * C + c) * H + h) * W + w];
    col[(size_t)k * (N * P) + np] = v;
}

/* dx[n][c][h][w] (+)= sum of the column entries that read it; a gather, so deterministic. */
__kernel void conv_col2im(__global const float *col, __global float *dx, const int N, const int C,
                          const int H, const int W, const int KH, const int KW, const int stride,
                          const int pad, const int OH, const int OW, const int accumulate) {
    const int idx = get_global_id(0);
    if (idx >= N * C * H * W) return;
    const int w = idx % W, h = (idx / W) % H, c = (idx / (W * H)) % C, n = idx / (W * H * C);
    const int P = OH * OW;
    float acc = 0.0f;
    for (int i = 0; i < KH; i++) {
        const int th = h + pad - i;
        if (th < 0 || th % stride) continue;
        const int oh = th / stride;
        if (oh >= OH) continue;
        for (int j = 0; j < KW; j++) {
            const int tw = w + pad - j;
            if (tw < 0 || tw % stride) continue;
            const int ow = tw / stride;
            if (ow >= OW) continue;
            const int k = (c * KH + i) * KW + j;
            acc += col[(size_t)k * (N * P) + n * P + oh * OW + ow];
        }
    }
    dx[idx] = accumulate ? dx[idx] + acc : acc;
}

/* y[n][oc][p] = Z[oc][n*P + p] (+ bias[oc]) */
__kernel void conv_scatter(__global const float *z, __global float *y, __global const float *bias,
                           const int has_bias, const int N, const int OC, const int P) {
    const int idx = get_global_id(0);
    if (idx >= N * OC * P) return;
    const int p = idx % P, oc = (idx / P) % OC, n = idx / (P * OC);
    float v = z[(size_t)oc * (N * P) + n * P + p];
    if (has_bias) v += bias[oc];
    y[idx] = v;
}

/* dZ[oc][n*P + p] = dy[n][oc][p] */
__kernel void conv_gather(__global const float *dy, __global float *dz, const int N, const int OC,
                          const int P) {
    const int idx = get_global_id(0);
    if (idx >= N * OC * P) return;
    const int p = idx % P, oc = (idx / P) % OC, n = idx / (P * OC);
    dz[(size_t)oc * (N * P) + n * P + p] = dy[idx];
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
