// Flash attention's building blocks (docs/attention.md, "Flash kernels"), shared by the kernels of
// flash_attention.cuh: the tile sizes, the kernels' parameters, the float <-> bf16 conversions of
// global elements, warp helpers, the warp-level tile-product policies (Tf32Mma: tensor cores,
// WMMA; SimtFp32: fp32 FMAs), the shared-memory layouts and the row loads and stores between global
// and shared memory. The policies take their operands as Mma::Elem; a bf16 policy (m16n16k16
// fragments) needs its own Elem tiles for Q, K, V, dout and the probabilities (the layouts below
// are float-only and say so).
#pragma once
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "autograd/kernels/attention.h"

namespace lmlab::cuda::flash {

namespace wmma = nvcuda::wmma;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kBr = 16 * kWarps;  // query rows per tile, 16 per warp
constexpr int kBc = 16 * kWarps;  // keys per tile, 16 per warp in the dk/dv kernel
constexpr int kPad = 4;           // floats after each shared row
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Sizes shared by every kernel. Scores go through log2 units: s2 = scale log2(e) q.k, so that
// exp(scale q.k - x) = exp2(s2 - x log2(e)).
struct Dims {
  int64_t NH, G, Tq, Tk, HS;  // G = NH / KVH query heads per kv head
  float scale, scale_log2;    // 1 / sqrt(HS), log2(e) / sqrt(HS)
};
// T: the element type of q, k, v, out, dout, dq, dk, dv (float or bf16); lse and D are float.
template <class T>
struct FwdParams {
  const T *q, *k, *v;
  HeadStrides sq, sk, sv, so;
  T* out;
  float* lse;
  Dims d;
};
template <class T>
struct BwdParams {
  const T *q, *k, *v, *dout;
  const float *lse, *D;
  HeadStrides sq, sk, sv, sdo, sdq, sdkv;
  T *dq, *dk, *dv;
  Dims d;
};

// Global element <-> float: the identity for float; for bf16 exact widening and rounding to nearest
// even (cvt.rn.bf16.f32: bf16(float)'s result for every non-NaN; a NaN stays a NaN, its bits may
// differ).
__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ float widen(bf16 x) {
  return __bfloat162float(__ushort_as_bfloat16(x.bits));
}
template <class T>
__device__ __forceinline__ T narrow(float x);
template <>
__device__ __forceinline__ float narrow<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ bf16 narrow<bf16>(float x) {
  bf16 r;
  r.bits = __bfloat16_as_ushort(__float2bfloat16_rn(x));
  return r;
}

template <class P>
__device__ __forceinline__ P* head_ptr(P* base, HeadStrides s, int64_t b, int64_t h) {
  return base + b * s.batch + h * s.head;
}
__device__ __forceinline__ int lane_id() { return threadIdx.x & 31; }
// The warp's first row in the block's 64-row tile.
__device__ __forceinline__ int warp_row0() { return 16 * (threadIdx.x / 32); }

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- warp-level tile products: c[n] (16 x 16) += A (16 x K) times columns 16n..16n+15 of
// B (K x N). A is row-major at a (leading dim lda); B is row-major at b (ldb), or with BT it is the
// transpose of the row-major (N x K) tile at b. Shared-memory operands, 32-byte aligned, leading
// dims multiples of 4 floats (WMMA's rules). ----

// Tensor cores: WMMA m16n16k8 with TF32 inputs (rounded to a 10-bit mantissa), fp32 accumulation.
struct Tf32Mma {
  using Elem = float;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;
  static __device__ __forceinline__ void zero(Acc& c) { wmma::fill_fragment(c, 0.0f); }
  static __device__ __forceinline__ void load(Acc& c, const float* p, int ld) {
    wmma::load_matrix_sync(c, p, ld, wmma::mem_row_major);
  }
  static __device__ __forceinline__ void store(float* p, int ld, const Acc& c) {
    wmma::store_matrix_sync(p, c, ld, wmma::mem_row_major);
  }
  // An input as the products see it: rounded to TF32.
  static __device__ __forceinline__ float operand(float x) { return wmma::__float_to_tf32(x); }
  template <class Frag>
  static __device__ __forceinline__ void round_tf32(Frag& f) {
    for (int t = 0; t < f.num_elements; ++t) f.x[t] = operand(f.x[t]);
  }
  template <int N, int K, bool BT>
  static __device__ __forceinline__ void gemm(Acc (&c)[N / 16], const float* a, int lda,
                                              const float* b, int ldb) {
    using BLayout = std::conditional_t<BT, wmma::col_major, wmma::row_major>;
    for (int k0 = 0; k0 < K; k0 += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
      wmma::load_matrix_sync(fa, a + k0, lda);
      round_tf32(fa);
#pragma unroll
      for (int n = 0; n < N / 16; ++n) {
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, BLayout> fb;
        wmma::load_matrix_sync(fb, BT ? b + n * 16 * ldb + k0 : b + k0 * ldb + n * 16, ldb);
        round_tf32(fb);
        wmma::mma_sync(c[n], fa, fb, c[n]);
      }
    }
  }
};

// CUDA cores, fp32 FMAs: lane l holds row l / 2, columns 8 (l % 2) .. 8 (l % 2) + 7 of a tile.
struct SimtAcc {
  float x[8];
};
struct SimtFp32 {
  using Elem = float;
  using Acc = SimtAcc;
  static __device__ __forceinline__ float operand(float x) { return x; }
  static __device__ __forceinline__ int row() { return lane_id() >> 1; }
  static __device__ __forceinline__ int col() { return (lane_id() & 1) * 8; }
  static __device__ __forceinline__ void zero(Acc& c) {
    for (int e = 0; e < 8; ++e) c.x[e] = 0.0f;
  }
  static __device__ __forceinline__ void load(Acc& c, const float* p, int ld) {
    for (int e = 0; e < 8; ++e) c.x[e] = p[row() * ld + col() + e];
  }
  static __device__ __forceinline__ void store(float* p, int ld, const Acc& c) {
    for (int e = 0; e < 8; ++e) p[row() * ld + col() + e] = c.x[e];
  }
  template <int N, int K, bool BT>
  static __device__ __forceinline__ void gemm(Acc (&c)[N / 16], const float* a, int lda,
                                              const float* b, int ldb) {
    const int r = row(), c0 = col();
    for (int kk = 0; kk < K; ++kk) {
      const float av = a[r * lda + kk];
#pragma unroll
      for (int n = 0; n < N / 16; ++n)
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const int j = 16 * n + c0 + e;
          c[n].x[e] = fmaf(av, BT ? b[j * ldb + kk] : b[kk * ldb + j], c[n].x[e]);
        }
    }
  }
};

// ---- shared-memory layouts, in floats; every tile starts at a multiple of 8 floats (32 bytes)
// ----
template <int HSP>
struct FwdSmem {  // Q, K, V, O (unnormalised output), S / P, per-row m, l and alpha
  static constexpr int kLd = HSP + kPad, kLdS = kBc + kPad;
  static constexpr int q = 0, k = q + kBr * kLd, v = k + kBc * kLd, o = v + kBc * kLd,
                       s = o + kBr * kLd, m = s + kBr * kLdS, l = m + kBr, alpha = l + kBr,
                       floats = alpha + kBr;
  static constexpr size_t bytes = size_t(floats) * sizeof(float);
};
template <int HSP>
struct BwdSmem {  // Q, dout, K, V, two square score tiles (S / P, dP / dS), per-row lse2 and D
  static_assert(kBr == kBc, "the score tiles are used transposed by the dk/dv kernel");
  static constexpr int kLd = HSP + kPad, kLdS = kBc + kPad;
  static constexpr int q = 0, dout = q + kBr * kLd, k = dout + kBr * kLd, v = k + kBc * kLd,
                       s = v + kBc * kLd, dp = s + kBr * kLdS, lse2 = dp + kBr * kLdS,
                       D = lse2 + kBr, floats = D + kBr;
  static constexpr size_t bytes = size_t(floats) * sizeof(float);
};

// ---- block-wide loads and warp-wide stores between global and shared memory ----

// Rows r0 .. r0 + R - 1 of a (rows, HS) matrix with row stride `pos` into a shared (R, HSP) tile,
// zero past `rows` and past HS (padding adds nothing to any product), widened to float. The whole
// block.
template <int R, int HSP, class Elem, class T>
__device__ void load_rows(Elem* dst, const T* src, int64_t pos, int64_t r0, int64_t rows,
                          int64_t HS) {
  for (int idx = threadIdx.x; idx < R * HSP; idx += kThreads) {
    const int r = idx / HSP, c = idx % HSP;
    const bool in = r0 + r < rows && c < HS;
    dst[r * (HSP + kPad) + c] = Elem(in ? widen(src[(r0 + r) * pos + c]) : 0.0f);
  }
}
// The backward's per-row terms of query rows i0 ..: lse in log2 units and D (zero past Tq).
__device__ inline void load_row_terms(float* lse2, float* D, const float* lse, const float* Dg,
                                      int64_t i0, int64_t Tq) {
  for (int r = threadIdx.x; r < kBr; r += kThreads) {
    const bool in = i0 + r < Tq;
    lse2[r] = in ? lse[i0 + r] * kLog2e : 0.0f;
    D[r] = in ? Dg[i0 + r] : 0.0f;
  }
}
// The warp's 16 rows r0.. of a shared float tile (leading dim ld) times `mul` into global rows
// g0 + r0 + .. below `rows`, columns below HS (rounded to T once, after the multiplication).
template <class T>
__device__ void store_rows(T* dst, int64_t pos, const float* src, int ld, int64_t g0, int64_t rows,
                           int64_t HS, float mul) {
  const int r0 = warp_row0();
  for (int r = r0; r < r0 + 16 && g0 + r < rows; ++r)
    for (int64_t c = lane_id(); c < HS; c += 32)
      dst[(g0 + r) * pos + c] = narrow<T>(src[r * ld + c] * mul);
}

}  // namespace lmlab::cuda::flash
