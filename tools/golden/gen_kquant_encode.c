// Goldens for tpp's K-quant encoders: the bytes GGML's own reference
// quantisers (quantize_row_q{4,5,6}_K_ref in ggml-quants.c) write for a fixed
// set of inputs. Links against a ggml built by the user; see README.md here
// for the build and the exact command.
//
// Writes to DIR (tests/golden/kquants):
//   encode_input.f32     kBlocks super-blocks of 256 little-endian f32 inputs
//   encode_q4_k.blocks   their Q4_K blocks (144 bytes each)
//   encode_q5_k.blocks   Q5_K (176 bytes each)
//   encode_q6_k.blocks   Q6_K (210 bytes each)
// Each super-block is one case (the list below). The inputs come from a
// counter-based generator and are stored, so nothing depends on libm.
//
// The *_ref functions are declared in ggml's private ggml-quants.h, which an
// install does not ship, so they are declared here with an untyped output;
// libggml-base exports them. The public ggml_quantize_chunk, which calls the
// same functions when given no importance matrix, must agree byte for byte.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"

void quantize_row_q4_K_ref(const float* x, void* y, int64_t k);
void quantize_row_q5_K_ref(const float* x, void* y, int64_t k);
void quantize_row_q6_K_ref(const float* x, void* y, int64_t k);

enum { kQK = 256, kBlocks = 12 };

// splitmix64: a uniform draw in [0, 1) from (seed, counter).
static double uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

// Bell-shaped, mean 0, variance 1 (the sum of four uniforms, rescaled).
static double bell(uint64_t seed, uint64_t i) {
  double s = 0;
  for (int k = 0; k < 4; ++k) s += uniform(seed, 4 * i + (uint64_t)k);
  return (s - 2.0) * 1.7320508075688772;
}

// Case b of the input list; x holds 256 values.
static void fill_case(int b, float* x) {
  const uint64_t seed = 1000 + (uint64_t)b;
  for (int i = 0; i < kQK; ++i) {
    const double g = bell(seed, (uint64_t)i);
    double v = 0;
    switch (b) {
      case 0: v = g; break;                                       // bell-shaped, scale 1
      case 1: v = 0.02 * g; break;                                // weight-like scale
      case 2: v = 0.02 * g * (i % 37 == 5 ? 25.0 : 1.0); break;   // a few large outliers
      case 3: v = 0; break;                                       // all zeros
      case 4: v = 3e-6 * g; break;                                // f16 scales are subnormal
      case 5: v = 1e-9 * g; break;                                // the f16 scales round to 0
      case 6: v = 0.5; break;                                     // all equal, positive
      case 7: v = -0.25; break;                                   // all equal, negative
      case 8: v = -0.05 * (g < 0 ? -g : g) - 0.001; break;        // negative only
      case 9: v = uniform(seed, (uint64_t)i); break;              // positive only, in [0, 1)
      case 10: {                                                  // sub-blocks 4 decades apart
        static const double kMag[8] = {1.0, 1e-4, 0.3, 1e-2, 3.0, 1e-3, 0.05, 0.7};
        v = kMag[i / 32] * g;
        break;
      }
      case 11: v = (i / 16) % 3 == 0 ? 0.0 : 0.1 * g; break;      // zero sub-blocks between others
      default: abort();
    }
    x[i] = (float)v;
  }
}

static void write_file(const char* dir, const char* name, const void* data, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  printf("wrote %s (%zu bytes)\n", path, n);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  static float x[kBlocks * kQK];
  for (int b = 0; b < kBlocks; ++b) fill_case(b, x + b * kQK);
  write_file(argv[1], "encode_input.f32", x, sizeof x);  // x86 and ARM are little-endian

  const struct {
    enum ggml_type type;
    void (*ref)(const float*, void*, int64_t);
    const char* file;
  } kinds[] = {
      {GGML_TYPE_Q4_K, quantize_row_q4_K_ref, "encode_q4_k.blocks"},
      {GGML_TYPE_Q5_K, quantize_row_q5_K_ref, "encode_q5_k.blocks"},
      {GGML_TYPE_Q6_K, quantize_row_q6_K_ref, "encode_q6_k.blocks"},
  };
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
    const size_t bytes = ggml_row_size(kinds[k].type, kBlocks * kQK);
    unsigned char* ref = calloc(1, bytes);
    unsigned char* chunk = calloc(1, bytes);
    kinds[k].ref(x, ref, kBlocks * kQK);
    // One row per super-block, so every block is quantised on its own either way.
    const size_t wrote = ggml_quantize_chunk(kinds[k].type, x, chunk, 0, kBlocks, kQK, NULL);
    if (wrote != bytes || memcmp(ref, chunk, bytes) != 0) {
      fprintf(stderr, "%s: ggml_quantize_chunk disagrees with the _ref quantiser\n", ggml_type_name(kinds[k].type));
      return 1;
    }
    write_file(argv[1], kinds[k].file, ref, bytes);
    free(ref);
    free(chunk);
  }
  printf("ggml %s (commit %s)\n", ggml_version(), ggml_commit());
  return 0;
}
