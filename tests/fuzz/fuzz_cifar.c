/* libFuzzer harness for the CIFAR-10 binary reader. The input is
 *   byte 0: first_k (0 = every record) | the rest: test_batch.bin
 * written into a directory of this process's own, as rc_dataset_load_cifar10 reads a directory. */
#include "fuzz_util.h"
#include "ramp/dataset.h"

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = {"test_batch.bin"};
    static rc_err e;
    if (size < 1) return 0;
    const char *dir = fuzz_tmpdir("cifar", names, 1);
    char path[4200];
    fuzz_write(path, sizeof path, names[0], data + 1, size - 1);
    rc_dataset d;
    if (rc_dataset_load_cifar10(&d, dir, 0, data[0], &e) != 0) {
        fuzz_check_message(e.msg);
        if (strchr(e.msg, '\n')) abort();
        if (d.pixels || d.labels || d.n) abort(); /* failure leaves *out zeroed */
        return 0;
    }
    if (d.c != 3 || d.h != 32 || d.w != 32 || !d.n || (data[0] && d.n != data[0])) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)d.n * 3 * 32 * 32; i++) sum += d.pixels[i];
    for (uint32_t i = 0; i < d.n; i++) {
        if (d.labels[i] >= d.num_classes) abort();
        sum += d.labels[i];
    }
    sink = sum;
    rc_dataset_free(&d);
    return 0;
}
