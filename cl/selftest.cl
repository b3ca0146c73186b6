/* Self-test kernel: y = alpha * x + beta * y, checked against the host by `ramp-cl selftest`. */
__kernel void selftest_axpby(const int n, const float alpha, __global const float *x,
                             const float beta, __global float *y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = alpha * x[i] + beta * y[i];
}
