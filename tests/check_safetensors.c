#include "testutil.h"

#include "ramp/safetensors.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------------------------- */

static void join(char *out, size_t n, const char *dir, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

/* A file with header length hlen, then the header text (header_len bytes), then data_len bytes of
 * data: hlen may lie about the header's size. */
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t header_len,
                      size_t data_len) {
    size_t n = 8 + header_len + data_len;
    unsigned char *buf = malloc(n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, header_len);
    for (size_t i = 0; i < data_len; i++) buf[8 + header_len + i] = (unsigned char)(i * 37 + 1);
    write_bytes(path, buf, n);
    free(buf);
}

/* write_raw with a truthful header length. */
static void write_header(const char *path, const char *header, size_t data_len) {
    write_raw(path, strlen(header), header, strlen(header), data_len);
}

/* Opening path must fail with a message that names the file and contains want. */
static void expect_open_fails(const char *path, const char *want) {
    rc_st_file f;
    rc_err e;
    rc_err_clear(&e);
    ck_assert_msg(rc_st_open(&f, path, &e) == -1, "%s opened; expected \"%s\"", path, want);
    ck_assert_msg(strstr(e.msg, path) != NULL, "message does not name the file: %s", e.msg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted \"%s\" in: %s", want, e.msg);
    ck_assert_ptr_null(f.buf);
    ck_assert_uint_eq(rc_st_count(&f), 0);
    rc_st_close(&f);
}

static void expect_header_fails(const char *dir, const char *header, size_t data_len,
                                const char *want) {
    char path[1200];
    join(path, sizeof path, dir, "bad.safetensors");
    write_header(path, header, data_len);
    expect_open_fails(path, want);
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static rc_st_tensor tensor(const char *name, int dtype, int ndim, const int64_t *shape,
                           const void *data) {
    rc_st_tensor t = {name, dtype, ndim, {0}, data};
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    return t;
}

/* A small valid checkpoint: the base for corruption and fuzzing. */
static void write_sample(const char *path) {
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    static const float b[2] = {-1, 0.5f};
    static const int64_t steps = 42;
    const char *keys[] = {"format", "arch"};
    const char *values[] = {"ramp-cl-checkpoint", "preact-resnet18"};
    rc_st_tensor t[] = {
        tensor("fc.weight", RC_ST_F32, 2, (int64_t[]){2, 3}, w),
        tensor("fc.bias", RC_ST_F32, 1, (int64_t[]){2}, b),
        tensor("train.steps", RC_ST_I64, 0, NULL, &steps),
    };
    rc_err e;
    ck_assert_msg(rc_st_write(path, t, 3, keys, values, 2, &e) == 0, "%s", e.msg);
}

/* ---- round trips ----------------------------------------------------------------------------- */

START_TEST(round_trip_tensors_scalars_and_metadata) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "ckpt.safetensors");
    float conv[36], fc_bias[10], scalar = 3.5f;
    for (int i = 0; i < 36; i++) conv[i] = (float)i * 0.25f - 3.0f;
    for (int i = 0; i < 10; i++) fc_bias[i] = 1.0f / (float)(i + 1);
    int64_t tracked = 12345, idx[3] = {-1, 0, INT64_MAX};
    const char *keys[] = {"format", "tricky \"key\"\\\n", "empty"};
    const char *values[] = {"ramp-cl-checkpoint",
                            "tab\there\x01\x1f/ \xc3\xa9 \xf0\x9f\x98\x80 \r\b\f", ""};
    rc_st_tensor t[] = {
        tensor("conv1.weight", RC_ST_F32, 4, (int64_t[]){4, 1, 3, 3}, conv),
        tensor("bn1.num_batches_tracked", RC_ST_I64, 0, NULL, &tracked),
        tensor("fc.bias", RC_ST_F32, 1, (int64_t[]){10}, fc_bias),
        tensor("empty", RC_ST_F32, 2, (int64_t[]){0, 3}, NULL),
        tensor("idx", RC_ST_I64, 1, (int64_t[]){3}, idx),
        tensor("scalar \"quoted\" \xc3\xa9", RC_ST_F32, 0, NULL, &scalar),
    };
    size_t n = sizeof t / sizeof *t;
    rc_err e;
    /* The mode is fopen's, 0666 under the umask: 0644 under the usual 022, private under 077. */
    mode_t umask_was = umask(077);
    ck_assert_msg(rc_st_write(path, t, n, keys, values, 3, &e) == 0, "%s", e.msg);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    umask(022);
    ck_assert_msg(rc_st_write(path, t, n, keys, values, 3, &e) == 0, "%s", e.msg);
    umask(umask_was);
    ck_assert_int_eq(count_dir_entries(dir), 1);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);

    rc_st_file f;
    ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_st_count(&f), n);
    /* The data section starts 8-byte aligned. */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f.buf[i];
    ck_assert_uint_eq((8 + hlen) % 8, 0);
    for (size_t i = 0; i < n; i++) {
        const rc_st_entry *x = rc_st_entry_at(&f, i);
        ck_assert_str_eq(x->name, t[i].name);
        ck_assert_ptr_eq(rc_st_find(&f, t[i].name), x);
        ck_assert_int_eq(x->dtype, t[i].dtype);
        ck_assert_int_eq(x->ndim, t[i].ndim);
        for (int d = 0; d < x->ndim; d++) ck_assert_int_eq(x->shape[d], t[i].shape[d]);
    }
    ck_assert_ptr_null(rc_st_entry_at(&f, n));
    ck_assert_ptr_null(rc_st_find(&f, "conv1.weigh"));

    float conv2[36], bias2[10], scalar2, none[1];
    int64_t tracked2, idx2[3];
    ck_assert_msg(rc_st_get_f32(&f, "conv1.weight", 4, (int64_t[]){4, 1, 3, 3}, conv2, &e) == 0,
                  "%s", e.msg);
    ck_assert_mem_eq(conv2, conv, sizeof conv);
    ck_assert_msg(rc_st_get_f32(&f, "fc.bias", 1, (int64_t[]){10}, bias2, &e) == 0, "%s", e.msg);
    ck_assert_mem_eq(bias2, fc_bias, sizeof fc_bias);
    ck_assert_msg(rc_st_get_f32(&f, t[5].name, 0, NULL, &scalar2, &e) == 0, "%s", e.msg);
    ck_assert_float_eq(scalar2, 3.5f);
    ck_assert_msg(rc_st_get_f32(&f, "empty", 2, (int64_t[]){0, 3}, none, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_st_find(&f, "empty")->nbytes, 0);
    ck_assert_msg(rc_st_get_i64(&f, "bn1.num_batches_tracked", 0, NULL, &tracked2, &e) == 0, "%s",
                  e.msg);
    ck_assert_int_eq(tracked2, 12345);
    ck_assert_msg(rc_st_get_i64(&f, "idx", 1, (int64_t[]){3}, idx2, &e) == 0, "%s", e.msg);
    ck_assert_mem_eq(idx2, idx, sizeof idx);

    for (int i = 0; i < 3; i++) {
        const char *v = rc_st_meta(&f, keys[i]);
        ck_assert_msg(v != NULL, "metadata %s missing", keys[i]);
        ck_assert_str_eq(v, values[i]);
    }
    ck_assert_ptr_null(rc_st_meta(&f, "absent"));
    rc_st_close(&f);
    ck_assert_ptr_null(f.buf);
    rc_st_close(&f); /* closing twice is harmless */
}
END_TEST

START_TEST(writes_the_expected_bytes) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "small.safetensors");
    const float w[2] = {1.0f, -2.0f};
    const int64_t n = 7;
    const char *keys[] = {"k"}, *values[] = {"a\"b"};
    rc_st_tensor t[] = {tensor("w", RC_ST_F32, 1, (int64_t[]){2}, w),
                        tensor("n", RC_ST_I64, 0, NULL, &n)};
    rc_err e;
    ck_assert_msg(rc_st_write(path, t, 2, keys, values, 1, &e) == 0, "%s", e.msg);
    /* 135 bytes of JSON and one space make the header 136 = 0x88 bytes. */
    static const char want[] =
        "\x88\0\0\0\0\0\0\0"
        "{\"__metadata__\":{\"k\":\"a\\\"b\"},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}} "
        "\x00\x00\x80\x3f\x00\x00\x00\xc0"
        "\x07\0\0\0\0\0\0\0";
    size_t len;
    unsigned char *got = read_file(path, &len);
    ck_assert_uint_eq(len, sizeof want - 1);
    ck_assert_uint_eq(len, 8 + 136 + 16);
    ck_assert_mem_eq(got, want, len);
    free(got);

    /* No tensors and no metadata: "{}" padded to 8 bytes. */
    ck_assert_msg(rc_st_write(path, NULL, 0, NULL, NULL, 0, &e) == 0, "%s", e.msg);
    got = read_file(path, &len);
    ck_assert_uint_eq(len, 16);
    ck_assert_mem_eq(got, "\x08\0\0\0\0\0\0\0{}      ", 16);
    free(got);
    rc_st_file f;
    ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_st_count(&f), 0);
    ck_assert_ptr_null(rc_st_find(&f, "w"));
    ck_assert_ptr_null(rc_st_meta(&f, "k"));
    rc_st_close(&f);
}
END_TEST

START_TEST(reads_escapes_every_dtype_and_unaligned_data) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "x.safetensors");
    rc_st_file f;
    rc_err e;
    /* \u escapes, a surrogate pair, the short escapes, whitespace between tokens and an odd
     * header length, which leaves the data unaligned. */
    write_header(path,
                 " {\n\t\"\\u00e9\\ud83d\\ude00\\/\\n\" : { \"shape\" : [ 2 ] , \"data_offsets\":"
                 "[0 ,8], \"dtype\":\"F32\"},\r\"__metadata__\":{\"\\u0041\\\"\":\"\\\\\\t\"}}  ",
                 8);
    ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s", e.msg);
    const rc_st_entry *x = rc_st_find(&f, "\xc3\xa9\xf0\x9f\x98\x80/\n");
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_ne((uintptr_t)x->data % 4, 0);
    float got[2], want[2];
    memcpy(want, x->data, 8);
    ck_assert_msg(rc_st_get_f32(&f, x->name, 1, (int64_t[]){2}, got, &e) == 0, "%s", e.msg);
    ck_assert_mem_eq(got, want, 8);
    ck_assert_str_eq(rc_st_meta(&f, "A\""), "\\\t");
    rc_st_close(&f);

    /* Every dtype of the format is known, with its element size. */
    static const struct {
        const char *name;
        int dtype;
        size_t size;
    } all[] = {{"BOOL", RC_ST_BOOL, 1}, {"U8", RC_ST_U8, 1},           {"I8", RC_ST_I8, 1},
               {"F8_E5M2", RC_ST_F8_E5M2, 1}, {"F8_E4M3", RC_ST_F8_E4M3, 1},
               {"I16", RC_ST_I16, 2}, {"U16", RC_ST_U16, 2},         {"F16", RC_ST_F16, 2},
               {"BF16", RC_ST_BF16, 2}, {"I32", RC_ST_I32, 4},       {"U32", RC_ST_U32, 4},
               {"F32", RC_ST_F32, 4}, {"F64", RC_ST_F64, 8},         {"I64", RC_ST_I64, 8},
               {"U64", RC_ST_U64, 8}};
    ck_assert_int_eq(sizeof all / sizeof *all, RC_ST_NUM_DTYPES);
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        char header[256];
        snprintf(header, sizeof header,
                 "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%zu]}}", all[i].name,
                 3 * all[i].size);
        write_header(path, header, 3 * all[i].size);
        ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s: %s", all[i].name, e.msg);
        ck_assert_int_eq(rc_st_find(&f, "t")->dtype, all[i].dtype);
        ck_assert_str_eq(rc_st_dtype_name(all[i].dtype), all[i].name);
        rc_st_close(&f);
    }
    ck_assert_str_eq(rc_st_dtype_name(RC_ST_NUM_DTYPES), "?");

    /* A zero dimension makes the tensor empty however large the others are. */
    write_header(path,
                 "{\"z\":{\"dtype\":\"F64\",\"shape\":[9223372036854775807,0],"
                 "\"data_offsets\":[0,0]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                 "\"data_offsets\":[0,1]}}",
                 1);
    ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_st_find(&f, "z")->nbytes, 0);
    rc_st_close(&f);
}
END_TEST

/* ---- corrupt files --------------------------------------------------------------------------- */

START_TEST(missing_short_and_non_regular_files) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "absent.safetensors");
    expect_open_fails(path, "cannot open: No such file or directory");
    expect_open_fails(dir, "not a regular file");
    join(path, sizeof path, dir, "short.safetensors");
    write_bytes(path, "", 0);
    expect_open_fails(path, "0 bytes, too short");
    write_bytes(path, "\x02\0\0", 3);
    expect_open_fails(path, "3 bytes, too short");
}
END_TEST

START_TEST(truncated_at_every_length) {
    char dir[1024], good[1200], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(good, sizeof good, dir, "good.safetensors");
    join(path, sizeof path, dir, "cut.safetensors");
    write_sample(good);
    size_t size;
    unsigned char *buf = read_file(good, &size);
    size_t hlen = buf[0] | (size_t)buf[1] << 8;
    for (size_t len = 0; len < size; len++) {
        write_bytes(path, buf, len);
        expect_open_fails(path, len < 8          ? "too short for the 8-byte header length"
                                : len < 8 + hlen ? "exceeds the"
                                                 : "run past the end of the");
    }
    /* One byte too many is an unused byte at the end. */
    buf = realloc(buf, size + 1);
    buf[size] = 0;
    write_bytes(path, buf, size + 1);
    expect_open_fails(path, "1 unused bytes after the last tensor");
    free(buf);
}
END_TEST

/* Header entries: F32(name, n, begin, end) is an F32 tensor of shape [n]; T_A a valid one. */
#define F32(name, n, b, e)                                                                    \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":[" #n "],\"data_offsets\":[" #b "," #e "]}"
#define T_A F32("a", 1, 0, 4)

START_TEST(header_length_beyond_the_file) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "len.safetensors");
    const char *h = "{}      ";
    write_raw(path, (uint64_t)1 << 62, h, 8, 0);
    expect_open_fails(path, "header length 4611686018427387904 exceeds the 8 bytes after it");
    write_raw(path, UINT64_MAX, h, 8, 0);
    expect_open_fails(path, "header length 18446744073709551615 exceeds");
    write_raw(path, 9, h, 8, 0);
    expect_open_fails(path, "header length 9 exceeds the 8 bytes after it");
    /* A header length that stops short cuts the JSON. */
    const char *one = "{" T_A "}";
    write_raw(path, strlen(one) - 1, one, strlen(one), 4);
    expect_open_fails(path, "expected ',' or '}', found the end of the header");
    write_raw(path, 1, "{}", 2, 0);
    expect_open_fails(path, "header byte 1: expected a string, found the end of the header");
}
END_TEST

START_TEST(invalid_json) {
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "st");
    static const struct {
        const char *header, *want;
    } cases[] = {
        {"", "header byte 0: expected '{', found the end of the header"},
        {"[]", "expected '{', found '['"},
        {"{" T_A, "expected ',' or '}', found the end of the header"},
        {"{" T_A ",}", "expected a string, found '}'"},
        {"{'a':1}", "header byte 1: expected a string, found '''"},
        {"{\"a\" 1}", "expected ':', found '1'"},
        {"{\"a\":null}", "expected '{', found 'n'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}",
         "tensor a: header byte 30: only integers are allowed here"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", "only integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", "leading zero"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-],\"data_offsets\":[0,4]}}",
         "expected an integer, found '-'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,4]}}",
         "expected an integer, found 't'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}",
         "expected an integer, found '['"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}",
         "integer out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1] \"data_offsets\":[0,4]}}",
         "expected ',' or '}', found '\"'"},
        {"{\"a\":{\"dtype\":{\"x\":\"F32\"},\"shape\":[1],\"data_offsets\":[0,4]}}",
         "expected a string, found '{'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
         "tensor a: header byte 53: unknown field \"x\""},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         "field \"dtype\" given twice"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "tensor a: header byte 32: field "
                                                      "\"data_offsets\" missing"},
        {"{\"a\":{}}", "field \"dtype\" missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "expected ','"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "expected ']'"},
        {"{" T_A "}x", "expected only spaces after the header object, found 'x'"},
        {"{" T_A "}\n\t \r", NULL},
        {"{\"a\\q\":{}}", "header byte 3: invalid escape in a string"},
        {"{\"a\\u12\":{}}", "invalid \\u escape"},
        {"{\"a\\u12G4\":{}}", "invalid \\u escape"},
        {"{\"a\\ud800\":{}}", "unpaired UTF-16 surrogate"},
        {"{\"a\\ud800\\u0041\":{}}", "unpaired UTF-16 surrogate"},
        {"{\"a\\udc00\":{}}", "unpaired UTF-16 surrogate"},
        {"{\"a\\u0000\":{}}", "\\u0000 is not allowed"},
        {"{\"a\x01\":{}}", "header byte 3: control character 0x01 in a string"},
        {"{\"a\xff\":{}}", "header byte 3: invalid UTF-8"},
        {"{\"a\xc0\x80\":{}}", "invalid UTF-8"},         /* overlong NUL */
        {"{\"a\xed\xa0\x80\":{}}", "invalid UTF-8"},     /* encoded surrogate */
        {"{\"a\xf4\x90\x80\x80\":{}}", "invalid UTF-8"}, /* above U+10FFFF */
        {"{\"a\xe2\x82\":{}}", "invalid UTF-8"},         /* cut short by the quote */
        {"{\"abc", "header byte 1: unterminated string"},
        {"{\"abc\\", "unterminated string"},
        {"{\"abc\\\"}", "unterminated string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].want) {
            expect_header_fails(dir, cases[i].header, 4, cases[i].want);
        } else {
            char path[1200];
            rc_st_file f;
            rc_err e;
            join(path, sizeof path, dir, "ok.safetensors");
            write_header(path, cases[i].header, 4);
            ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s", e.msg);
            rc_st_close(&f);
        }
    }
}
END_TEST

START_TEST(offsets_that_lie) {
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "st");
    expect_header_fails(dir, "{" F32("a", 2, 0, 8) "}", 4,
                        "tensor a: data_offsets [0,8] run past the end of the 4-byte data section");
    expect_header_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,"
                             "9223372036854775807]}}",
                        4, "run past the end");
    expect_header_fails(dir, "{" F32("a", 2, 0, 8) "," F32("b", 2, 4, 12) "}", 12,
                        "tensor b: data [4,12) overlaps tensor a");
    expect_header_fails(dir, "{" F32("b", 2, 4, 12) "," F32("a", 2, 0, 8) "}", 12,
                        "tensor b: data [4,12) overlaps tensor a");
    expect_header_fails(dir, "{" F32("a", 1, 0, 4) "," F32("b", 1, 0, 4) "}", 4,
                        "overlaps tensor");
    expect_header_fails(dir, "{" F32("a", 1, 0, 4) "," F32("b", 1, 8, 12) "}", 12,
                        "tensor b: 4 unused bytes before its data [8,12)");
    expect_header_fails(dir, "{" F32("a", 1, 4, 8) "}", 8,
                        "tensor a: 4 unused bytes before its data [4,8)");
    expect_header_fails(dir, "{" F32("a", 1, 0, 4) "}", 8,
                        "tensor a: 4 unused bytes after the last tensor");
    expect_header_fails(dir, "{" F32("a", 0, 8, 4) "}", 8,
                        "tensor a: data_offsets [8,4] end before they begin");
    expect_header_fails(dir, "{" F32("a", 1, -4, 0) "}", 4, "negative data offset -4");
    expect_header_fails(dir, "{}", 4, "4 bytes of data but no tensors");
    expect_header_fails(dir, "{\"__metadata__\":{}}", 1, "1 bytes of data but no tensors");
}
END_TEST

START_TEST(shapes_that_do_not_match_the_data) {
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "st");
    expect_header_fails(dir, "{" F32("a", 3, 0, 8) "}", 8,
                        "tensor a: shape [3] of F32 needs 12 bytes but data_offsets [0,8] hold 8");
    expect_header_fails(dir, "{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
                        "shape [] of I64 needs 8 bytes but data_offsets [0,4] hold 4");
    expect_header_fails(dir, "{" F32("a", -1, 0, 4) "}", 4, "tensor a: header byte 29: negative "
                                                            "dimension -1");
    expect_header_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                             "\"data_offsets\":[0,4]}}",
                        4, "more than 8 dimensions");
    expect_header_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,"
                             "4294967296],\"data_offsets\":[0,0]}}",
                        4, "tensor a: shape [4294967296,4294967296,4294967296] is too large");
    /* 2^62 * 4 bytes wraps to 0 in 64 bits. */
    expect_header_fails(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                             "\"data_offsets\":[0,0]}}",
                        0, "is too large");
    expect_header_fails(dir, "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                        4, "tensor a: header byte 14: unknown dtype \"F33\"");
    expect_header_fails(dir, "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                        4, "unknown dtype \"f32\"");
    expect_header_fails(dir, "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        "expected a string, found '4'");
}
END_TEST

START_TEST(duplicates_and_bad_metadata) {
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "st");
    expect_header_fails(dir, "{" F32("a", 1, 0, 4) "," F32("a", 1, 4, 8) "}", 8,
                        "tensor a: name given twice");
    /* The same name once escaped. */
    expect_header_fails(dir, "{" F32("a", 1, 0, 4) "," F32("\\u0061", 1, 4, 8) "}", 8,
                        "tensor a: name given twice");
    /* ... and for the same bytes: a name given twice, not an overlap */
    expect_header_fails(dir, "{" F32("a", 1, 0, 4) "," F32("a", 1, 0, 4) "}", 4,
                        "tensor a: name given twice");
    expect_header_fails(dir, "{\"__metadata__\":{\"k\":1}," T_A "}", 4,
                        "header byte 21: expected a string, found '1'");
    expect_header_fails(dir, "{\"__metadata__\":{\"k\":[\"x\"]}," T_A "}", 4,
                        "expected a string, found '['");
    expect_header_fails(dir, "{\"__metadata__\":{\"k\":{\"x\":\"y\"}}," T_A "}", 4,
                        "expected a string, found '{'");
    expect_header_fails(dir, "{\"__metadata__\":\"x\"," T_A "}", 4, "expected '{', found '\"'");
    expect_header_fails(dir, "{\"__metadata__\":{},\"__metadata__\":{}}", 0,
                        "header byte 19: \"__metadata__\" given twice");
    expect_header_fails(dir, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," T_A "}", 4,
                        "metadata k: key given twice");
}
END_TEST

/* ---- checked getters ------------------------------------------------------------------------- */

START_TEST(getters_name_the_tensor) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "ckpt.safetensors");
    float w[32 * 9] = {0};
    int64_t steps = 9;
    rc_st_tensor t[] = {tensor("conv1.weight", RC_ST_F32, 4, (int64_t[]){32, 1, 3, 3}, w),
                        tensor("steps", RC_ST_I64, 0, NULL, &steps)};
    rc_err e;
    ck_assert_msg(rc_st_write(path, t, 2, NULL, NULL, 0, &e) == 0, "%s", e.msg);
    rc_st_file f;
    ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s", e.msg);
    float dst[64 * 9];
    int64_t i64;
    char want[1400];

    ck_assert_int_eq(rc_st_get_f32(&f, "conv1.weight", 4, (int64_t[]){64, 1, 3, 3}, dst, &e), -1);
    snprintf(want, sizeof want, "%s: tensor conv1.weight: shape [32,1,3,3] expected [64,1,3,3]",
             path);
    ck_assert_str_eq(e.msg, want);
    ck_assert_int_eq(rc_st_get_f32(&f, "conv1.weight", 3, (int64_t[]){32, 1, 3}, dst, &e), -1);
    ck_assert_msg(strstr(e.msg, "shape [32,1,3,3] expected [32,1,3]") != NULL, "%s", e.msg);
    ck_assert_int_eq(rc_st_get_f32(&f, "conv2.weight", 4, (int64_t[]){32, 1, 3, 3}, dst, &e), -1);
    snprintf(want, sizeof want, "%s: tensor conv2.weight: not found", path);
    ck_assert_str_eq(e.msg, want);
    ck_assert_int_eq(rc_st_get_i64(&f, "conv1.weight", 4, (int64_t[]){32, 1, 3, 3}, &i64, &e), -1);
    snprintf(want, sizeof want, "%s: tensor conv1.weight: dtype F32 expected I64", path);
    ck_assert_str_eq(e.msg, want);
    ck_assert_int_eq(rc_st_get_f32(&f, "steps", 0, NULL, dst, &e), -1);
    snprintf(want, sizeof want, "%s: tensor steps: dtype I64 expected F32", path);
    ck_assert_str_eq(e.msg, want);
    ck_assert_int_eq(rc_st_get_i64(&f, "steps", 1, (int64_t[]){1}, &i64, &e), -1);
    ck_assert_msg(strstr(e.msg, "tensor steps: shape [] expected [1]") != NULL, "%s", e.msg);
    ck_assert_msg(rc_st_get_i64(&f, "steps", 0, NULL, &i64, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(i64, 9);
    rc_st_close(&f);
}
END_TEST

/* ---- writer errors and atomicity ------------------------------------------------------------- */

/* Writing the n tensors t to path fails with a message that names the file and contains want. */
static void expect_write_fails(const char *path, const rc_st_tensor *t, int n, const char *want) {
    rc_err e;
    ck_assert_int_eq(rc_st_write(path, t, n, NULL, NULL, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, want), "wanted %s in: %s", want, e.msg);
}

/* path still holds the len bytes at before; frees before. */
static void expect_unchanged(const char *path, unsigned char *before, size_t len) {
    size_t len1;
    unsigned char *after = read_file(path, &len1);
    ck_assert_uint_eq(len1, len);
    ck_assert_mem_eq(after, before, len);
    free(before);
    free(after);
}

START_TEST(writer_refuses_bad_tensors_and_leaves_the_old_file) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "ckpt.safetensors");
    write_sample(path);
    size_t len0;
    unsigned char *before = read_file(path, &len0);
    float x[4] = {0};
    const char *k2[] = {"k", "k"}, *v2[] = {"1", "2"}, *vnull[] = {NULL};
    const struct {
        rc_st_tensor t;
        const char *want;
    } cases[] = {
        {{"h", RC_ST_F16, 1, {2}, x},
         "tensor h: dtype F16 (7) cannot be written, only F32 and I64"},
        {{"d", 99, 1, {2}, x}, "tensor d: dtype ? (99) cannot be written"},
        {{"n", RC_ST_F32, 9, {1}, x}, "tensor n: 9 dimensions, at most 8 are supported"},
        {{"n", RC_ST_F32, -1, {1}, x}, "tensor n: -1 dimensions"},
        {{"s", RC_ST_F32, 2, {2, -2}, x}, "tensor s: shape [2,-2] has a negative dimension"},
        {{"big", RC_ST_F32, 3, {1 << 30, 1 << 30, 1 << 30}, x},
         "tensor big: shape [1073741824,1073741824,1073741824] is too large"},
        {{"z", RC_ST_F32, 1, {2}, NULL}, "tensor z: no data for shape [2]"},
        {{"__metadata__", RC_ST_F32, 1, {2}, x}, "tensor __metadata__: the name is reserved"},
        {{"bad\xff", RC_ST_F32, 1, {2}, x}, "name is not valid UTF-8"},
        {{NULL, RC_ST_F32, 1, {2}, x}, "tensor #0 has no name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect_write_fails(path, &cases[i].t, 1, cases[i].want);
    rc_err e;
    rc_st_tensor twice[] = {tensor("a", RC_ST_F32, 1, (int64_t[]){2}, x),
                            tensor("a", RC_ST_F32, 1, (int64_t[]){2}, x)};
    ck_assert_int_eq(rc_st_write(path, twice, 2, NULL, NULL, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, "tensor a: name given twice"), "%s", e.msg);
    ck_assert_int_eq(rc_st_write(path, twice, 1, k2, v2, 2, &e), -1);
    ck_assert_msg(strstr(e.msg, "metadata k: key given twice"), "%s", e.msg);
    ck_assert_int_eq(rc_st_write(path, twice, 1, k2, vnull, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, "metadata entry #0 has no key or no value"), "%s", e.msg);

    ck_assert_int_eq(count_dir_entries(dir), 1);
    expect_unchanged(path, before, len0);
}
END_TEST

START_TEST(failed_writes_leave_no_temporary_file) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    float x[2] = {1, 2};
    rc_st_tensor t = tensor("x", RC_ST_F32, 1, (int64_t[]){2}, x);

    /* The directory does not exist. */
    join(path, sizeof path, dir, "missing/ckpt.safetensors");
    expect_write_fails(path, &t, 1, "cannot create a temporary file: No such file or directory");
    ck_assert_int_eq(count_dir_entries(dir), 0);

    /* The target is a directory: everything is written, then the rename fails. */
    join(path, sizeof path, dir, "ckpt.safetensors");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    expect_write_fails(path, &t, 1, "renaming the temporary file over it failed: Is a directory");
    ck_assert_int_eq(count_dir_entries(dir), 1);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
}
END_TEST

/* A write that fails part way (here the file size limit; on a real machine a full disk) keeps the
 * old checkpoint. Root ignores permissions, so the limit is the portable way to make it fail.
 * The limit is set in a child process so that it cannot affect other tests. */
START_TEST(write_failing_midway_keeps_the_old_file) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "ckpt.safetensors");
    write_sample(path);
    size_t len0;
    unsigned char *before = read_file(path, &len0);
    ck_assert_uint_lt(len0, 4096);
    float *big = calloc(65536, sizeof *big);
    rc_st_tensor t = tensor("big", RC_ST_F32, 1, (int64_t[]){65536}, big);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of being killed */
        struct rlimit lim = {4096, 4096};
        rc_err e;
        rc_err_clear(&e);
        int ok = setrlimit(RLIMIT_FSIZE, &lim) == 0 &&
                 rc_st_write(path, &t, 1, NULL, NULL, 0, &e) == -1 && strstr(e.msg, path) &&
                 strstr(e.msg, "File too large");
        if (!ok) fprintf(stderr, "child: %s\n", e.msg);
        free(big);
        free(before);
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    free(big);
    expect_unchanged(path, before, len0);
    ck_assert_int_eq(count_dir_entries(dir), 1);
}
END_TEST

/* ---- fuzzing --------------------------------------------------------------------------------- */

static uint64_t fuzz_next(uint64_t *s) { /* splitmix64: deterministic, test-local */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* One random change to buf (header length in the first 8 bytes, header of hlen bytes, data). */
static void mutate(unsigned char *buf, size_t *len, size_t cap, uint64_t *rng) {
    static const char tokens[] = "{}[]\":,0123456789-\\ eu.";
    uint64_t hlen = get_u64(buf);
    size_t hend = 8 + (size_t)(hlen < *len - 8 ? hlen : *len - 8);
    size_t at = 8 + (hend > 8 ? (size_t)(fuzz_next(rng) % (hend - 8)) : 0);
    switch (fuzz_next(rng) % 7) {
    case 0:
        if (at < hend) buf[at] ^= (unsigned char)(1u << fuzz_next(rng) % 8);
        break;
    case 1:
        if (at < hend) buf[at] = (unsigned char)tokens[fuzz_next(rng) % (sizeof tokens - 1)];
        break;
    case 2: /* a digit for another: offsets and shapes that lie but parse */
        for (size_t i = at; i < hend; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                buf[i] = (unsigned char)('0' + fuzz_next(rng) % 10);
                break;
            }
        }
        break;
    case 3: {
        uint64_t r = fuzz_next(rng);
        put_u64(buf, r % 4 == 0 ? r : r % 4 == 1 ? (uint64_t)1 << (r % 64) : hlen + r % 33 - 16);
        break;
    }
    case 4:
        *len = (size_t)(fuzz_next(rng) % (*len + 1));
        break;
    case 5: /* delete a header byte, keeping the header length true */
        if (at < hend && *len > 8) {
            memmove(buf + at, buf + at + 1, *len - at - 1);
            (*len)--;
            put_u64(buf, hlen - 1);
        }
        break;
    default: /* duplicate a header byte */
        if (at < hend && *len < cap) {
            memmove(buf + at + 1, buf + at, *len - at);
            (*len)++;
            put_u64(buf, hlen + 1);
        }
        break;
    }
}

static size_t elem_size(int dtype) {
    switch (dtype) {
    case RC_ST_F64: case RC_ST_I64: case RC_ST_U64: return 8;
    case RC_ST_F32: case RC_ST_I32: case RC_ST_U32: return 4;
    case RC_ST_F16: case RC_ST_BF16: case RC_ST_I16: case RC_ST_U16: return 2;
    default: return 1;
    }
}

START_TEST(fuzzed_headers_fail_cleanly_or_stay_in_bounds) {
    char dir[1024], good[1200], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(good, sizeof good, dir, "good.safetensors");
    join(path, sizeof path, dir, "fuzz.safetensors");
    write_sample(good);
    size_t size;
    unsigned char *orig = read_file(good, &size);
    size_t cap = size + 64;
    unsigned char *buf = malloc(cap);
    uint64_t rng = 12345;
    int opened = 0, failed = 0;
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = size;
        memcpy(buf, orig, size);
        int rounds = 1 + (int)(fuzz_next(&rng) % 3);
        for (int r = 0; r < rounds && len >= 8; r++) mutate(buf, &len, cap, &rng);
        write_bytes(path, buf, len);
        rc_st_file f;
        rc_err e;
        rc_err_clear(&e);
        if (rc_st_open(&f, path, &e) != 0) {
            ck_assert_msg(strstr(e.msg, path) != NULL, "iteration %d: %s", iter, e.msg);
            ck_assert_ptr_null(f.buf);
            failed++;
            continue;
        }
        opened++;
        /* Every tensor lies inside the data section, has the size of its shape, and together
         * they cover the section exactly. */
        const unsigned char *data = f.buf + 8 + get_u64(f.buf), *end = f.buf + f.size;
        size_t total = 0;
        for (size_t i = 0; i < rc_st_count(&f); i++) {
            const rc_st_entry *x = rc_st_entry_at(&f, i);
            const unsigned char *p = x->data;
            ck_assert_msg(p >= data && p <= end && x->nbytes <= (size_t)(end - p),
                          "iteration %d: tensor %s outside the data", iter, x->name);
            size_t bytes = elem_size(x->dtype);
            for (int d = 0; d < x->ndim; d++) bytes *= (size_t)x->shape[d];
            ck_assert_uint_eq(x->nbytes, bytes);
            ck_assert_ptr_eq(rc_st_find(&f, x->name), x);
            total += x->nbytes;
        }
        ck_assert_uint_eq(total, (size_t)(end - data));
        rc_st_close(&f);
    }
    /* Both outcomes happen, so the mutations neither always break nor never break the file. */
    ck_assert_int_gt(opened, 0);
    ck_assert_int_gt(failed, 1000);
    free(orig);
    free(buf);
}
END_TEST

/* Found by tests/fuzz: names from the file went into messages as they were, so an escaped
 * newline in a name split the one-line message and an escape sequence reached the terminal. */
START_TEST(names_in_messages_are_escaped_and_cut) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "bad.safetensors");
    static const char *const cases[][2] = {
        {"{" F32("a\\nb\\u001b[31m\\t", 2, 0, 8) "}", "tensor a\\nb\\x1b[31m\\t: data_offsets"},
        {"{\"x\\r\":{\"dtype\":\"F32\",\"sh\\nape\":[1]}}", "tensor x\\r: header byte 22: "
                                                                "unknown field \"sh\\nape\""},
        {"{\"x\":{\"dtype\":\"F\\u007f\\u0085\"}}", "unknown dtype \"F\\x7f\\xc2\\x85\""},
        {"{\"__metadata__\":{\"k\\n\":\"1\",\"k\\n\":\"2\"}," F32("e", 0, 0, 0) "}",
         "metadata k\\n: key given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rc_st_file f;
        rc_err e;
        write_header(path, cases[i][0], 0);
        ck_assert_int_eq(rc_st_open(&f, path, &e), -1);
        ck_assert_msg(strstr(e.msg, cases[i][1]) != NULL, "wanted \"%s\" in: %s", cases[i][1],
                      e.msg);
        ck_assert_msg(strchr(e.msg, '\n') == NULL && strchr(e.msg, '\x1b') == NULL, "%s", e.msg);
    }
    /* A 300-byte name is cut to fit, after whole characters, with "..." at the end. */
    char header[600], want[400];
    char name[301];
    memset(name, 'n', 300);
    memcpy(name + 251, "\xc3\xa9", 2); /* an e-acute across the cut would be split */
    name[300] = '\0';
    snprintf(header, sizeof header,
             "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", name);
    write_header(path, header, 4);
    rc_st_file f;
    rc_err e;
    ck_assert_int_eq(rc_st_open(&f, path, &e), -1);
    snprintf(want, sizeof want, "tensor %.251s...: data_offsets [0,8] run past", name);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted \"%s\" in: %s", want, e.msg);
}
END_TEST

/* A file of metadata alone skipped the sorting and the duplicate check of its keys: rc_st_meta
 * then missed keys given out of order, and a key given twice was accepted. */
START_TEST(metadata_without_tensors_is_sorted_and_checked) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "meta.safetensors");
    write_header(path, "{\"__metadata__\":{\"c\":\"3\",\"b\":\"2\",\"a\":\"1\"}}", 0);
    rc_st_file f;
    rc_err e;
    ck_assert_msg(rc_st_open(&f, path, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(rc_st_count(&f), 0);
    ck_assert_str_eq(rc_st_meta(&f, "a"), "1");
    ck_assert_str_eq(rc_st_meta(&f, "b"), "2");
    ck_assert_str_eq(rc_st_meta(&f, "c"), "3");
    rc_st_close(&f);
    expect_header_fails(dir, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
                        "metadata k: key given twice");
}
END_TEST

/* rc_st_open_buffer (what rc_st_open and the fuzzer use) on a buffer of the file's exact size:
 * the same tensors as from the file; a header lying about sizes fails (under tests/sanitize.sh,
 * ASan would report a read past the buffer) and the buffer is freed either way. */
START_TEST(open_buffer_reads_memory_and_owns_it) {
    char dir[1024], path[1200];
    test_tmpdir(dir, sizeof dir, "st");
    join(path, sizeof path, dir, "good.safetensors");
    write_sample(path);
    size_t size;
    unsigned char *bytes = read_file(path, &size), *copy = malloc(size);
    memcpy(copy, bytes, size);
    rc_st_file f;
    rc_err e;
    ck_assert_msg(rc_st_open_buffer(&f, "mem", copy, size, &e) == 0, "%s", e.msg);
    ck_assert_ptr_eq(f.buf, copy);
    ck_assert_uint_eq(rc_st_count(&f), 3);
    float w[6];
    ck_assert_msg(rc_st_get_f32(&f, "fc.weight", 2, (int64_t[]){2, 3}, w, &e) == 0, "%s", e.msg);
    ck_assert(w[0] == 1 && w[5] == 6);
    ck_assert_str_eq(rc_st_meta(&f, "arch"), "preact-resnet18");
    rc_st_close(&f);
    /* The header length and the last offset grow past the end of the buffer. */
    uint64_t hlen = get_u64(bytes);
    for (uint64_t lie = 1; lie <= 16; lie++) {
        copy = malloc(size);
        memcpy(copy, bytes, size);
        put_u64(copy, hlen + lie);
        ck_assert_int_eq(rc_st_open_buffer(&f, "mem", copy, size, &e), -1);
        ck_assert_ptr_null(f.buf);
        ck_assert_msg(strncmp(e.msg, "mem: ", 5) == 0, "%s", e.msg);
    }
    free(bytes);
}
END_TEST

int main(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, round_trip_tensors_scalars_and_metadata);
    tcase_add_test(tc, writes_the_expected_bytes);
    tcase_add_test(tc, reads_escapes_every_dtype_and_unaligned_data);
    tcase_add_test(tc, missing_short_and_non_regular_files);
    tcase_add_test(tc, truncated_at_every_length);
    tcase_add_test(tc, header_length_beyond_the_file);
    tcase_add_test(tc, invalid_json);
    tcase_add_test(tc, offsets_that_lie);
    tcase_add_test(tc, shapes_that_do_not_match_the_data);
    tcase_add_test(tc, duplicates_and_bad_metadata);
    tcase_add_test(tc, names_in_messages_are_escaped_and_cut);
    tcase_add_test(tc, metadata_without_tensors_is_sorted_and_checked);
    tcase_add_test(tc, open_buffer_reads_memory_and_owns_it);
    tcase_add_test(tc, getters_name_the_tensor);
    tcase_add_test(tc, writer_refuses_bad_tensors_and_leaves_the_old_file);
    tcase_add_test(tc, failed_writes_leave_no_temporary_file);
    tcase_add_test(tc, write_failing_midway_keeps_the_old_file);
    tcase_add_test(tc, fuzzed_headers_fail_cleanly_or_stay_in_bounds);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
