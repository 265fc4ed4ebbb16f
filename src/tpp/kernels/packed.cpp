#include "tpp/kernels/packed.h"

#include <algorithm>
#include <cstring>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/kquants.h"

namespace tpp::kernels {
namespace {

constexpr int64_t kBlock = 32;

// Bytes of one packed block of 16 rows: scales, then integers.
int64_t block_bytes(DType t) { return kPackRows * 2 + (t == DType::q8_0 ? kPackRows * kBlock : kPackRows * kBlock / 2); }

bool is_k_quant(DType t) { return t == DType::q4_k || t == DType::q5_k || t == DType::q6_k; }

// Bits of each code above its nibble: q4_k none, q5_k one, q6_k two (packed.h).
int high_bits(DType t) { return t == DType::q4_k ? 0 : t == DType::q5_k ? 1 : 2; }
// Bytes of the high bits per block of 32: a plane of 64 bytes per bit.
int64_t high_bytes(DType t) { return 64 * high_bits(t); }

// Bytes of one packed K-quant super-block of 16 rows (packed.h).
int64_t super_block_bytes(DType t) {
  const int64_t head = t == DType::q6_k ? 32 + 256 : 64 + 256;
  return head + 8 * (256 + high_bytes(t));
}

// Row r's codes q[256] into the 8 blocks of 32 at ints (packed.h).
void put_codes(DType t, uint8_t* ints, const uint8_t* q, int64_t r) {
  for (int b = 0; b < 8; ++b, ints += 256 + high_bytes(t)) {
    for (int i = 0; i < kBlock; ++i) {
      const int j = i / 4, byte = int(4 * r) + i % 4, code = q[kBlock * b + i];
      ints[64 * (j % 4) + byte] |= uint8_t(j < 4 ? code & 15 : (code & 15) << 4);
      if (const int h = high_bits(t)) {
        const int per = 8 / h;  // fields per byte
        ints[256 + 64 * (j / per) + byte] |= uint8_t((code >> 4) << (h * (j % per)));
      }
    }
  }
}

void pack_k_quant(DType t, std::byte* dst, const void* src, int64_t M, int64_t K) {
  const int64_t nb = K / kQK, sbb = super_block_bytes(t), src_bytes = dtype_bytes(t, kQK);
  const bool six = t == DType::q6_k;
  std::memset(dst, 0, size_t(packed_bytes(t, M, K)));
  KBlockInts ints;
  for (int64_t m = 0; m < M; ++m) {
    const int64_t group = m / kPackRows, r = m % kPackRows;
    for (int64_t b = 0; b < nb; ++b) {
      const auto* blk = static_cast<const uint8_t*>(src) + (m * nb + b) * src_bytes;
      if (six) unpack_q6_k_block(ints, blk);
      else unpack_qk_block(ints, blk, t == DType::q5_k);
      auto* out = reinterpret_cast<uint8_t*>(dst) + (group * nb + b) * sbb;
      std::memcpy(out + 2 * r, &ints.d, 2);
      if (six) {
        for (int j = 0; j < 16; ++j) out[32 + 16 * j + r] = uint8_t(ints.sc[j]);
        put_codes(t, out + 288, ints.q, r);
      } else {
        std::memcpy(out + 32 + 2 * r, &ints.dmin, 2);
        for (int j = 0; j < 8; ++j) {
          out[64 + 16 * j + r] = uint8_t(ints.sc[j]);
          out[192 + 16 * j + r] = ints.mn[j];
        }
        put_codes(t, out + 320, ints.q, r);
      }
    }
  }
}

}  // namespace

bool has_packed_layout(DType t, int64_t K) {
  return ((t == DType::q8_0 || t == DType::q4_0) && K % kBlock == 0) || (is_k_quant(t) && K % kQK == 0) ||
         (t == DType::bf16 && K % 2 == 0) || t == DType::f32;
}

int64_t packed_bytes(DType t, int64_t M, int64_t K) {
  TPP_CHECK(has_packed_layout(t, K), "packed weights: no packed layout for {} rows of {} columns", dtype_name(t), K);
  const int64_t groups = (M + kPackRows - 1) / kPackRows;
  if (t == DType::bf16 || t == DType::f32) return groups * kPackRows * K * dtype_bytes(t, 1);
  if (is_k_quant(t)) return groups * (K / kQK) * super_block_bytes(t);
  return groups * (K / kBlock) * block_bytes(t);
}

void pack_rows(DType t, std::byte* dst, const void* src, int64_t M, int64_t K) {
  if (t == DType::f32) {
    // A transpose of each group's 16 x K block (the kernel table's where it
    // has one), in tiles of 16 x 16.
    const auto* in = static_cast<const float*>(src);
    auto* out = reinterpret_cast<float*>(dst);
    const PackF32GroupFn group = kernels().pack_f32_group;
    for (int64_t g = 0; g * kPackRows < M; ++g, out += kPackRows * K) {
      const int64_t rows = std::min<int64_t>(kPackRows, M - g * kPackRows);
      const float* rows_in = in + g * kPackRows * K;
      if (group) {
        group(out, rows_in, rows, K);
        continue;
      }
      for (int64_t k0 = 0; k0 < K; k0 += 16) {
        const int64_t k1 = std::min<int64_t>(K, k0 + 16);
        for (int64_t r = 0; r < kPackRows; ++r)
          for (int64_t k = k0; k < k1; ++k) out[k * kPackRows + r] = r < rows ? rows_in[r * K + k] : 0.0f;
      }
    }
    return;
  }
  if (t == DType::bf16) {
    // Group by group, chunk by chunk: the output is written in order, the
    // 16 rows of a group are read as 16 streams.
    const auto* in = static_cast<const uint32_t*>(src);  // one bf16 pair per element
    auto* out = reinterpret_cast<uint32_t*>(dst);
    for (int64_t g = 0; g * kPackRows < M; ++g) {
      const int64_t rows = std::min<int64_t>(kPackRows, M - g * kPackRows);
      for (int64_t j = 0; j < K / 2; ++j, out += kPackRows) {
        int64_t r = 0;
        for (; r < rows; ++r) std::memcpy(out + r, in + (g * kPackRows + r) * (K / 2) + j, 4);
        for (; r < kPackRows; ++r) out[r] = 0;
      }
    }
    return;
  }
  if (is_k_quant(t)) {
    pack_k_quant(t, dst, src, M, K);
    return;
  }
  const int64_t nb = K / kBlock, src_block = dtype_bytes(t, kBlock), bb = block_bytes(t);
  std::memset(dst, 0, size_t(packed_bytes(t, M, K)));
  const auto* in = static_cast<const uint8_t*>(src);
  for (int64_t m = 0; m < M; ++m) {
    const int64_t group = m / kPackRows, r = m % kPackRows;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = in + (m * nb + b) * src_block;
      uint8_t* out = reinterpret_cast<uint8_t*>(dst) + (group * nb + b) * bb;
      std::memcpy(out + 2 * r, blk, 2);  // the f16 scale
      uint8_t* ints = out + 2 * kPackRows;
      // Element i of the block, unsigned (wq + off).
      uint8_t e[kBlock];
      for (int i = 0; i < 16; ++i) {
        if (t == DType::q8_0) {
          e[i] = uint8_t(int(int8_t(blk[2 + i])) + 128);
          e[i + 16] = uint8_t(int(int8_t(blk[2 + i + 16])) + 128);
        } else {
          e[i] = blk[2 + i] & 15;
          e[i + 16] = blk[2 + i] >> 4;
        }
      }
      for (int i = 0; i < kBlock; ++i) {
        const int j = i / 4, byte = int(4 * r) + i % 4;
        if (t == DType::q8_0) ints[64 * j + byte] = e[i];
        else ints[64 * (j % 4) + byte] |= uint8_t(j < 4 ? e[i] : e[i] << 4);
      }
    }
  }
}

void pack_bf16_transposed(std::byte* dst, const uint16_t* src, int64_t M, int64_t K, int64_t ld, int64_t g_begin,
                          int64_t g_end) {
  // Chunk j of group g pairs rows 2j and 2j + 1 of src over the group's 16
  // columns: two contiguous reads, one contiguous write.
  const int64_t pairs = (K + 1) / 2;
  auto* out = reinterpret_cast<uint32_t*>(dst) + g_begin * kPackRows * pairs;
  for (int64_t g = g_begin; g < g_end; ++g) {
    const int64_t m0 = g * kPackRows, rows = std::min<int64_t>(kPackRows, M - m0);
    for (int64_t j = 0; j < pairs; ++j, out += kPackRows) {
      const uint16_t* lo = src + 2 * j * ld + m0;
      if (2 * j + 1 < K && rows == kPackRows) {
        const uint16_t* hi = lo + ld;
        for (int64_t r = 0; r < kPackRows; ++r) out[r] = uint32_t(lo[r]) | uint32_t(hi[r]) << 16;
        continue;
      }
      int64_t r = 0;
      for (; r < rows; ++r) out[r] = uint32_t(lo[r]) | (2 * j + 1 < K ? uint32_t(lo[ld + r]) << 16 : 0u);
      for (; r < kPackRows; ++r) out[r] = 0;
    }
  }
}

void pack_f32_transposed(std::byte* dst, const float* src, int64_t M, int64_t K, int64_t ld, int64_t g_begin,
                         int64_t g_end) {
  auto* out = reinterpret_cast<float*>(dst) + g_begin * kPackRows * K;
  for (int64_t g = g_begin; g < g_end; ++g) {
    const int64_t m0 = g * kPackRows, cols = std::min<int64_t>(kPackRows, M - m0);
    for (int64_t k = 0; k < K; ++k, out += kPackRows) {
      std::memcpy(out, src + k * ld + m0, size_t(cols) * sizeof(float));
      if (cols < kPackRows) std::memset(out + cols, 0, size_t(kPackRows - cols) * sizeof(float));
    }
  }
}

}  // namespace tpp::kernels
