/* Softmax cross-entropy with mean reduction, fused with its gradient and per-sample accuracy. */

/* Per sample: loss[n] = logsumexp(z) - z[y], correct[n] = (argmax z == y, first max wins),
 * dz = (softmax(z) - onehot(y)) * scale (scale = 1/N for the mean). dz may be NULL-like when
 * want_grad is 0. */
__kernel void ce_forward_backward(__global const float *z, __global const int *labels,
                                  __global float *loss, __global float *correct,
                                  __global float *dz, const int N, const int K, const float scale,
                                  const int want_grad) {
    const int n = get_global_id(0);
    if (n >= N) return;
    __global const float *row = z + (size_t)n * K;
    const int y = labels[n];
    float mx = row[0];
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (row[k] > mx) {
            mx = row[k];
            arg = k;
        }
    float s = 0.0f;
    for (int k = 0; k < K; k++) s += exp(row[k] - mx);
    const float lse = mx + log(s);
    loss[n] = lse - row[y];
    correct[n] = arg == y ? 1.0f : 0.0f;
    if (want_grad)
        for (int k = 0; k < K; k++)
            dz[(size_t)n * K + k] = (exp(row[k] - lse) - (k == y ? 1.0f : 0.0f)) * scale;
}

/* acc[0] += sum of loss, acc[1] += sum of correct, acc[2] += N; one work-item, fixed order, so
 * the host reads training statistics only when it reports them. */
__kernel void ce_accumulate(__global const float *loss, __global const float *correct,
                            __global float *acc, const int N) {
    if (get_global_id(0) != 0) return;
    float l = 0.0f, c = 0.0f;
    for (int n = 0; n < N; n++) {
        l += loss[n];
        c += correct[n];
    }
    acc[0] += l;
    acc[1] += c;
    acc[2] += (float)N;
}
