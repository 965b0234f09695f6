// Reference runner for tests: calls one conversion function of llama.cpp's libggml-base.so.
//
// usage: ggml-ref <path/to/libggml-base.so> <symbol> <n_elements> <out_bytes>
//   stdin : the input buffer (block data or floats)
//   stdout: out_bytes bytes written by `symbol(in, out, n_elements)`
// Every function used (dequantize_row_*, quantize_row_*_ref, ggml_fp16_to_fp32_row,
// ggml_fp32_to_fp16_row, ggml_bf16_to_fp32_row, ggml_fp32_to_bf16_row_ref) has the shape
// void f(const void * in, void * out, int64_t n).
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*row_fn)(const void *, void *, int64_t);

int main(int argc, char ** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s <lib.so> <symbol> <n_elements> <out_bytes>\n", argv[0]);
        return 2;
    }
    void * lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen(%s) failed: %s\n", argv[1], dlerror());
        return 3;
    }
    row_fn fn = (row_fn) dlsym(lib, argv[2]);
    if (!fn) {
        fprintf(stderr, "dlsym(%s) failed: %s\n", argv[2], dlerror());
        return 4;
    }
    const int64_t n = strtoll(argv[3], NULL, 10);
    const size_t out_bytes = (size_t) strtoull(argv[4], NULL, 10);

    size_t cap = 1 << 16, len = 0;
    unsigned char * in = malloc(cap);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            in = realloc(in, cap);
        }
        size_t got = fread(in + len, 1, cap - len, stdin);
        if (got == 0) break;
        len += got;
    }
    // Pad the input so that a short buffer never makes the library read out of bounds.
    unsigned char * padded = calloc(len + 64, 1);
    memcpy(padded, in, len);
    unsigned char * out = calloc(out_bytes + 64, 1);
    fn(padded, out, n);
    if (fwrite(out, 1, out_bytes, stdout) != out_bytes) {
        fprintf(stderr, "short write\n");
        return 5;
    }
    return 0;
}
