/* libFuzzer harness for the safetensors reader: the input is a whole file. A file that opens
 * must hand out only tensors that lie inside it: every byte of every tensor is read (ASan
 * reports a read outside the buffer, which is allocated to the input's exact size). */
#include "fuzz_util.h"
#include "ramp/safetensors.h"

static volatile unsigned sink; /* keeps the reads of tensor bytes from being optimized away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rc_err e;
    rc_st_file f;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) fuzz_die("malloc");
    memcpy(buf, data, size);
    if (rc_st_open_buffer(&f, "fuzz.safetensors", buf, size, &e) != 0) {
        fuzz_check_message(e.msg);
        if (strchr(e.msg, '\n')) {
            fprintf(stderr, "the message is not one line: %s\n", e.msg);
            abort();
        }
        return 0;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < rc_st_count(&f); i++) {
        const rc_st_entry *t = rc_st_entry_at(&f, i);
        for (size_t b = 0; b < t->nbytes; b++) sum += ((const unsigned char *)t->data)[b];
        if (rc_st_find(&f, t->name) != t) {
            fprintf(stderr, "tensor %s is not found by its name\n", t->name);
            abort();
        }
        void *dst = malloc(t->nbytes ? t->nbytes : 1);
        if (!dst) fuzz_die("malloc");
        if (t->dtype == RC_ST_F32 && rc_st_get_f32(&f, t->name, t->ndim, t->shape, dst, &e) != 0)
            abort();
        if (t->dtype == RC_ST_I64 && rc_st_get_i64(&f, t->name, t->ndim, t->shape, dst, &e) != 0)
            abort();
        free(dst);
    }
    for (size_t i = 0; i < f.n_meta; i++)
        if (rc_st_meta(&f, f.meta[i].key) == NULL) abort();
    rc_st_close(&f);
    sink = sum;
    return 0;
}
