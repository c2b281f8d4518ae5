// Flash attention's entry points (kernels/attention.h): checks, the choice of kernel instance (head
// size padded to 16, 32, 64 or 128; float32: tensor cores with TF32 on, fp32 FMAs otherwise;
// bfloat16: always tensor cores) and the launches, one template over the element type for the
// float and bf16 overloads (the bf16 ones: compiled, not yet run on a GPU). The device code and its
// tiling: flash_attention.cuh.
#include <cmath>
#include <string>
#include <type_traits>

#include "autograd/kernels/attention.h"
#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/cuda/flash_attention.cuh"

namespace lmlab::cuda {
namespace {

using flash::BwdParams;
using flash::BwdSmem;
using flash::FwdParams;
using flash::FwdSmem;

// Calls f(std::integral_constant<int, HSP>) with the padded head size that serves HS.
template <class F>
void with_padded_head_size(int64_t HS, F&& f) {
  if (HS <= 16)
    f(std::integral_constant<int, 16>());
  else if (HS <= 32)
    f(std::integral_constant<int, 32>());
  else if (HS <= 64)
    f(std::integral_constant<int, 64>());
  else
    f(std::integral_constant<int, 128>());
}
// Calls f(policy): for float, tensor cores when TF32 is on (set_tf32), fp32 FMAs otherwise; for
// bf16 always tensor cores (bf16 values are exact in TF32; fp32 accumulation), so no bf16 kernel
// is instantiated with SimtFp32.
template <class T, class F>
void with_policy(F&& f) {
  if constexpr (std::is_same_v<T, bf16>)
    f(flash::Tf32Mma());
  else if (tf32_enabled())
    f(flash::Tf32Mma());
  else
    f(flash::SimtFp32());
}

// A kernel using more than 48 KiB of dynamic shared memory has to say so first (once is enough).
template <class P>
bool allow_shared_memory(void (*kernel)(P), size_t bytes) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  return true;
}

void check(const char* op, int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  auto fail = [&](const std::string& why) { throw Error(std::string("[") + op + "] " + why); };
  if (!flash_attention_supported(HS))
    fail("head size " + std::to_string(HS) + " is not served by the flash kernels (1..128)");
  if (KVH <= 0 || NH % KVH != 0)
    fail(std::to_string(NH) + " query heads do not split into " + std::to_string(KVH) +
         " kv heads");
  if (Tq > Tk)
    fail("query length " + std::to_string(Tq) + " exceeds key length " + std::to_string(Tk));
  if (B > 65535 || NH > 65535)  // gridDim.y and .z
    fail("batch " + std::to_string(B) + " and heads " + std::to_string(NH) +
         " must each be at most 65535");
}

flash::Dims dims(int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  const double scale = 1.0 / std::sqrt(double(HS));
  return {NH, NH / KVH, Tq, Tk, HS, float(scale), float(scale * 1.4426950408889634)};
}

unsigned tiles(int64_t n, int64_t tile) { return row_blocks((n + tile - 1) / tile); }

template <class T>
void run_forward(const T* q, HeadStrides sq, const T* k, HeadStrides sk, const T* v, HeadStrides sv,
                 T* out, HeadStrides so, float* lse, int64_t B, int64_t NH, int64_t KVH, int64_t Tq,
                 int64_t Tk, int64_t HS) {
  check("flash_attention_forward", B, NH, KVH, Tq, Tk, HS);
  if (B == 0 || NH == 0 || Tq == 0) return;
  const FwdParams<T> p{q, k, v, sq, sk, sv, so, out, lse, dims(NH, KVH, Tq, Tk, HS)};
  const dim3 grid(tiles(Tq, flash::kBr), unsigned(NH), unsigned(B));
  with_padded_head_size(HS, [&](auto hsp) {
    with_policy<T>([&](auto mma) {
      constexpr int HSP = decltype(hsp)::value;
      constexpr size_t smem = FwdSmem<HSP>::bytes;
      auto kernel = flash::flash_forward_kernel<decltype(mma), HSP, T>;
      static const bool ready = allow_shared_memory(kernel, smem);  // once per kernel instance
      (void)ready;
      kernel<<<grid, flash::kThreads, smem, stream()>>>(p);
      CUDA_CHECK_LAUNCH("flash_forward_kernel");
    });
  });
}

// D = rowsum(dout * out), then dk / dv per key tile and dq per query tile (two kernels, so that
// every output element is summed by one thread in a fixed order: no atomics, deterministic).
template <class T>
void run_backward(const T* q, HeadStrides sq, const T* k, HeadStrides sk, const T* v,
                  HeadStrides sv, const T* out, HeadStrides so, const float* lse, const T* dout,
                  HeadStrides sdo, T* dq, HeadStrides sdq, T* dk, T* dv, HeadStrides sdkv,
                  int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  check("flash_attention_backward", B, NH, KVH, Tq, Tk, HS);
  if (B == 0 || NH == 0 || Tk == 0) return;
  const int64_t rows = B * NH * Tq;
  Scratch D(size_t(rows > 0 ? rows : 1) * sizeof(float));
  BwdParams<T> p;
  p.q = q, p.k = k, p.v = v, p.dout = dout, p.lse = lse, p.D = D.as<float>();
  p.sq = sq, p.sk = sk, p.sv = sv, p.sdo = sdo, p.sdq = sdq, p.sdkv = sdkv;
  p.dq = dq, p.dk = dk, p.dv = dv, p.d = dims(NH, KVH, Tq, Tk, HS);
  const dim3 key_grid(tiles(Tk, flash::kBc), unsigned(KVH), unsigned(B));
  const dim3 query_grid(tiles(Tq, flash::kBr), unsigned(NH), unsigned(B));
  with_padded_head_size(HS, [&](auto hsp) {
    with_policy<T>([&](auto mma) {
      using Mma = decltype(mma);
      constexpr int HSP = decltype(hsp)::value;
      constexpr size_t smem = BwdSmem<HSP>::bytes;
      auto dkdv = flash::flash_dkdv_kernel<Mma, HSP, T>;
      auto dqk = flash::flash_dq_kernel<Mma, HSP, T>;
      // Once per kernel instance (this lambda is instantiated per T, HSP and policy).
      static const bool ready = allow_shared_memory(dkdv, smem) && allow_shared_memory(dqk, smem);
      (void)ready;
      if (rows > 0) {
        constexpr int threads = 256;  // 8 rows per block
        flash::flash_rowdot_kernel<Mma, T><<<grid_for(rows * 32, threads), threads, 0, stream()>>>(
            out, so, dout, sdo, D.as<float>(), NH, Tq, HS, rows);
        CUDA_CHECK_LAUNCH("flash_rowdot_kernel");
      }
      // With Tq = 0 this writes zero dk and dv (no query sees any key).
      dkdv<<<key_grid, flash::kThreads, smem, stream()>>>(p);
      CUDA_CHECK_LAUNCH("flash_dkdv_kernel");
      if (rows == 0) return;
      dqk<<<query_grid, flash::kThreads, smem, stream()>>>(p);
      CUDA_CHECK_LAUNCH("flash_dq_kernel");
    });
  });
}

}  // namespace

void flash_attention_forward(const float* q, HeadStrides sq, const float* k, HeadStrides sk,
                             const float* v, HeadStrides sv, float* out, HeadStrides so, float* lse,
                             int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk,
                             int64_t HS) {
  run_forward(q, sq, k, sk, v, sv, out, so, lse, B, NH, KVH, Tq, Tk, HS);
}
void flash_attention_forward(const bf16* q, HeadStrides sq, const bf16* k, HeadStrides sk,
                             const bf16* v, HeadStrides sv, bf16* out, HeadStrides so, float* lse,
                             int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk,
                             int64_t HS) {
  run_forward(q, sq, k, sk, v, sv, out, so, lse, B, NH, KVH, Tq, Tk, HS);
}

void flash_attention_backward(const float* q, HeadStrides sq, const float* k, HeadStrides sk,
                              const float* v, HeadStrides sv, const float* out, HeadStrides so,
                              const float* lse, const float* dout, HeadStrides sdo, float* dq,
                              HeadStrides sdq, float* dk, float* dv, HeadStrides sdkv, int64_t B,
                              int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  run_backward(q, sq, k, sk, v, sv, out, so, lse, dout, sdo, dq, sdq, dk, dv, sdkv, B, NH, KVH, Tq,
               Tk, HS);
}
void flash_attention_backward(const bf16* q, HeadStrides sq, const bf16* k, HeadStrides sk,
                              const bf16* v, HeadStrides sv, const bf16* out, HeadStrides so,
                              const float* lse, const bf16* dout, HeadStrides sdo, bf16* dq,
                              HeadStrides sdq, bf16* dk, bf16* dv, HeadStrides sdkv, int64_t B,
                              int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  run_backward(q, sq, k, sk, v, sv, out, so, lse, dout, sdo, dq, sdq, dk, dv, sdkv, B, NH, KVH, Tq,
               Tk, HS);
}

}  // namespace lmlab::cuda
