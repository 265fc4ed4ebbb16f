// Weights packed for the int8 kernels (Kernels::matmul_q8_0_packed,
// matmul_q4_0_packed), the bf16 dot kernels (matmul_bf16_packed) and the
// broadcast-form f32 kernel (matmul_f32_packed). Packing
// happens once, when a model is loaded on a CPU with those kernels; the
// stored layout (tpp/kernels/api.h) stays what every other reader sees.
//
// Rows go in groups of 16 (the last group padded with zero rows), so that
// one 32-bit lane of a 512-bit register is one row.
//
// f32: a group is K chunks of 64 bytes; chunk k holds column k of the 16
// rows, row r's at bytes 4r .. 4r+3.
//
// bf16: a group is K/2 chunks of 64 bytes; chunk j holds k = 2j, 2j+1 of the
// 16 rows, row r's pair at bytes 4r .. 4r+3 (K even; 2 bytes per weight).
//
// q8_0 / q4_0: a group holds its K/32 blocks in order, and a block holds
//   - the 16 rows' f16 scales d (row r's at index r), then
//   - their integers interleaved four at a time: chunk j (k = 4j .. 4j+3) is
//     64 bytes, row r's four at bytes 4r .. 4r+3. They are stored unsigned, wq + off:
//       q8_0: 8 chunks of u8 (off = 128): 544 bytes a block, 34 per row as in GGUF;
//       q4_0: 4 chunks of bytes whose low nibbles are chunk j and high nibbles
//             chunk j + 4 (off = 8): 288 bytes a block, 18 per row as in GGUF.
//
// q4_k / q5_k / q6_k (K a multiple of 256): a group holds its K/256
// super-blocks in order (kquants.h names the fields), each
//   q4_k, q5_k: d[16], dmin[16] (f16), sc[8][16], mn[8][16] (u8: sub-block
//               j's scale and minimum of row r at [j][r]), then 8 blocks of 32;
//   q6_k:       d[16] (f16), sc[16][16] (i8, [j][r]), then 8 blocks of 32.
// A block of 32 holds the codes' low four bits as q4_0's integers do (256
// bytes: chunk j's nibbles, low for j < 4, high for j >= 4), then the bits
// above the nibble, h of them (q5_k 1, q6_k 2), in h planes of 64 bytes:
// byte 4r + t of plane j / (8 / h) holds those bits of row r's code at
// k = 4j + t in its bits h (j % (8 / h)) ... Codes keep their format's
// offset (q6_k's 32). A super-block of 16 rows is 2,368
// bytes (q4_k; 148 per row against 144 in GGUF), 2,880 (q5_k; 180 against
// 176) and 3,360 (q6_k; 210 as in GGUF).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tpp/core/dtype.h"

namespace tpp::kernels {

inline constexpr int64_t kPackRows = 16;

// Whether [M, K] matrices of dtype t have a packed layout: q8_0 and q4_0
// (K a multiple of 32), q4_k, q5_k and q6_k (K a multiple of 256), bf16 (K
// even), f32.
bool has_packed_layout(DType t, int64_t K);
// Bytes of the packed form of an [M, K] matrix of dtype t.
int64_t packed_bytes(DType t, int64_t M, int64_t K);
// Packs rows [0, M) of src (GGUF layout, dtype t) into dst[packed_bytes(t, M, K)].
// Groups are independent: rows [16i, M) pack into dst + packed_bytes(t, 16i, K),
// so callers may pack ranges of groups in parallel.
void pack_rows(DType t, std::byte* dst, const void* src, int64_t M, int64_t K);

// The bf16 packed form of the transpose of a [K, M] matrix of bf16 values
// with row stride ld: element (m, k) of the packed [M, K] matrix is
// src[k * ld + m] (training packs W^T for the input gradient, and x^T for
// the weight gradient). Writes only the groups [g_begin, g_end), so callers
// may split groups across threads. An odd K is padded with one zero column:
// the packed form then has K + 1 columns (packed_bytes(bf16, M, K + 1)).
void pack_bf16_transposed(std::byte* dst, const uint16_t* src, int64_t M, int64_t K, int64_t ld, int64_t g_begin,
                          int64_t g_end);

// The f32 packed form of the transpose of a [K, M] matrix with row stride
// ld: element (m, k) of the packed [M, K] matrix is src[k * ld + m] (training
// packs W^T for the input gradient and x^T for the weight gradient). Chunk k
// of group g is 16 consecutive floats of src's row k: a strided copy. Writes
// only the groups [g_begin, g_end).
void pack_f32_transposed(std::byte* dst, const float* src, int64_t M, int64_t K, int64_t ld, int64_t g_begin,
                         int64_t g_end);

}  // namespace tpp::kernels
