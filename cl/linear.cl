/* Fully connected layer helpers; the products themselves are GEMMs. */

/* y[n][o] = b[o]: the GEMM then adds x W^T with beta = 1. */
__kernel void linear_bias_broadcast(__global float *y, __global const float *b, const int N,
                                    const int O) {
    const int i = get_global_id(0);
    if (i < N * O) y[i] = b[i % O];
}

/* db[o] = sum over n of dy[n][o], in a fixed order. */
__kernel void linear_bias_grad(__global const float *dy, __global float *db, const int N,
                               const int O, const int accumulate) {
    const int o = get_global_id(0);
    if (o >= O) return;
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += dy[n * O + o];
    db[o] = accumulate ? db[o] + s : s;
}
