/* model_io CKPT IN.safetensors OUT.safetensors: what ramp-cl's model computes for a checkpoint
 * (tests/convert_checkpoint_test.py compares it with PyTorch). Builds the model the checkpoint
 * describes, loads it, and for IN's input.x [N,C,H,W] (F32) and input.y [N] (I64) runs an
 * eval-mode forward, the mean cross-entropy and the backward to the input, as attacks do; writes
 * logits [N,classes] and grad_x [N,C,H,W] to OUT, on device RAMP_CL_TEST_DEVICE (default 0) as
 * the tests. Exit status 1 on any error (one line on stderr), 2 on a usage error. */
#include "ramp/checkpoint.h"
#include "ramp/context.h"
#include "ramp/loss.h"
#include "ramp/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct io {
    rc_st_file in;
    rc_model m;
    float *x, *logits, *grad;
    int32_t *y;
    cl_mem labels, loss, correct;
} io;

static int run(rc_ctx *ctx, io *s, const char *ckpt, const char *in, const char *out, rc_err *e) {
    rc_model_opts o;
    if (rc_st_open(&s->in, in, e) || rc_checkpoint_read_opts(ckpt, &o, e)) return -1;
    const rc_st_entry *x = rc_st_find(&s->in, "input.x");
    if (!x || x->ndim != 4 || x->dtype != RC_ST_F32)
        return rc_err_set(e, "%s: no F32 tensor input.x [N,C,H,W]", in);
    const int n = (int)x->shape[0], k = o.num_classes;
    const size_t nx = x->nbytes / sizeof(float);
    o.input_size = (int)x->shape[2];
    int64_t yshape[1] = {n}, lshape[2] = {n, k};
    int64_t *y64 = malloc((size_t)n * sizeof *y64);
    s->x = malloc(nx * sizeof *s->x);
    s->grad = malloc(nx * sizeof *s->grad);
    s->logits = malloc((size_t)n * k * sizeof *s->logits);
    s->y = malloc((size_t)n * sizeof *s->y);
    if (!y64 || !s->x || !s->grad || !s->logits || !s->y) {
        free(y64);
        return rc_err_set(e, "out of host memory");
    }
    int r = rc_st_get_i64(&s->in, "input.y", 1, yshape, y64, e) ||
            rc_st_get_f32(&s->in, "input.x", 4, x->shape, s->x, e);
    for (int i = 0; !r && i < n; i++) s->y[i] = (int32_t)y64[i];
    free(y64);
    if (r || rc_model_create(ctx, &s->m, &o, n, e) ||
        rc_checkpoint_load(ctx, &s->m, NULL, NULL, ckpt, e) ||
        rc_buffer_create(ctx, (size_t)n * 4, "labels", &s->labels, e) ||
        rc_buffer_create(ctx, (size_t)n * 4, "loss", &s->loss, e) ||
        rc_buffer_create(ctx, (size_t)n * 4, "correct", &s->correct, e) ||
        rc_buffer_write(ctx, s->labels, 0, (size_t)n * 4, s->y, "labels", e) ||
        rc_buffer_write(ctx, rc_model_input(&s->m), 0, nx * 4, s->x, "input.x", e) ||
        rc_model_forward(ctx, &s->m, 0, n, e) ||
        rc_ce_forward_backward(ctx, n, k, rc_model_logits(&s->m), s->labels, s->loss, s->correct,
                               rc_model_logits_grad(&s->m), e) ||
        rc_model_backward(ctx, &s->m, 0, n, RC_GRAD_NONE, 1, e) ||
        rc_buffer_read(ctx, rc_model_logits(&s->m), 0, (size_t)n * k * 4, s->logits, "logits", e) ||
        rc_buffer_read(ctx, rc_model_input_grad(&s->m), 0, nx * 4, s->grad, "input gradient", e))
        return -1;
    const rc_st_tensor t[2] = {{.name = "logits",
                                .dtype = RC_ST_F32,
                                .ndim = 2,
                                .shape = {lshape[0], lshape[1]},
                                .data = s->logits},
                               {.name = "grad_x",
                                .dtype = RC_ST_F32,
                                .ndim = 4,
                                .shape = {x->shape[0], x->shape[1], x->shape[2], x->shape[3]},
                                .data = s->grad}};
    return rc_st_write(out, t, 2, NULL, NULL, 0, e);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: model_io CKPT IN.safetensors OUT.safetensors\n");
        return 2;
    }
    rc_ctx ctx;
    rc_err e;
    io s;
    memset(&s, 0, sizeof s);
    rc_err_clear(&e);
    const char *dev = getenv("RAMP_CL_TEST_DEVICE");
    int r = rc_ctx_open(&ctx, dev && *dev ? atoi(dev) : 0, &e);
    if (!r) {
        r = run(&ctx, &s, argv[1], argv[2], argv[3], &e);
        rc_model_free(&s.m);
        cl_mem bufs[3] = {s.labels, s.loss, s.correct};
        for (int i = 0; i < 3; i++)
            if (bufs[i]) clReleaseMemObject(bufs[i]);
        rc_ctx_close(&ctx);
    }
    rc_st_close(&s.in);
    free(s.x);
    free(s.grad);
    free(s.logits);
    free(s.y);
    if (r) fprintf(stderr, "model_io: %s\n", e.msg);
    return r ? 1 : 0;
}
