/* Self-test kernels, checked against the host by `ramp-cl selftest`: y = alpha * x + beta * y. */
__kernel void selftest_axpby(const int n, const float alpha, __global const float *x,
                             const float beta, __global float *y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = alpha * x[i] + beta * y[i];
}

/* Work-group reduction self-test: sums[r] = row r's n floats added by wg_sum (cl/common.cl), one
 * work-group per row. */
__kernel void selftest_group_sum(__global const float *x, const int n, __global float *sums) {
    __local float lanes[RC_LANES];
    const int r = get_group_id(0);
    const float s = wg_sum(x + (size_t)r * n, n, lanes);
    if (get_local_id(0) == 0) sums[r] = s;
}
