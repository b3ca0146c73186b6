#include "ramp/gemm.h"

#include <clblast_c.h>

int rc_sgemm(rc_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
             rc_matrix a, rc_matrix b, float beta, rc_matrix c, const char *what, rc_err *e) {
    CLBlastStatusCode s = CLBlastSgemm(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a.buf, a.offset, a.ld,
        b.buf, b.offset, b.ld, beta, c.buf, c.offset, c.ld, &ctx->queue, NULL);
    if (s != CLBlastSuccess)
        return rc_err_clblast(e, "CLBlastSgemm", s, "%s, M=%zu N=%zu K=%zu, trans %c%c", what, m,
                              n, k, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N');
    return 0;
}
