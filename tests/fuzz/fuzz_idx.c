/* libFuzzer harness for the IDX reader (raw or gzip). The input is
 *   byte 0: first_k (0 = every point) | u32 little-endian L | L bytes: the image file | the rest:
 *   the label file
 * (L is cut to what is there). The files are written under a directory of this process's own,
 * as rc_dataset_load_idx reads paths through zlib. */
#include "fuzz_util.h"
#include "ramp/dataset.h"

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = {"images", "labels"};
    static rc_err e;
    if (size < 5) return 0;
    fuzz_tmpdir("idx", names, 2);
    uint32_t first_k = data[0];
    size_t len = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 |
                 (size_t)data[4] << 24;
    data += 5;
    size -= 5;
    if (len > size) len = size;
    char images[4200], labels[4200];
    fuzz_write(images, sizeof images, names[0], data, len);
    fuzz_write(labels, sizeof labels, names[1], data + len, size - len);
    rc_dataset d;
    if (rc_dataset_load_idx(&d, images, labels, first_k, &e) != 0) {
        fuzz_check_message(e.msg);
        if (strchr(e.msg, '\n')) abort();
        if (d.pixels || d.labels || d.n) abort(); /* failure leaves *out zeroed */
        return 0;
    }
    if (d.c != 1 || !d.n || (first_k && d.n != first_k)) abort();
    size_t image = (size_t)d.h * d.w;
    unsigned sum = 0;
    for (size_t i = 0; i < d.n * image; i++) sum += d.pixels[i];
    for (uint32_t i = 0; i < d.n; i++) {
        if (d.labels[i] >= d.num_classes) abort();
        sum += d.labels[i];
    }
    sink = sum;
    rc_dataset_free(&d);
    return 0;
}
