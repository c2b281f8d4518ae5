// Flash attention's device code (FlashAttention-2: Dao 2023, arXiv:2307.08691; docs/attention.md,
// "Flash kernels"), launched by flash_attention.cu. Four kernels: the forward, the backward's row
// term D, dk/dv per key tile and dq per query tile.
//
// Tiles: a block of 4 warps owns 64 query rows (forward, dq) or 64 keys (dk, dv); warp w owns rows
// 16w..16w+15 of that tile end to end (their scores, softmax and products), so only the loads of a
// shared tile need the whole block to synchronise. Operand tiles sit in shared memory as
// (64, HSP): HSP is the head size rounded up to 16, 32, 64 or 128, and a tile is zero beyond HS and
// beyond the last row, so a partial tile or an odd head size needs no special case in a product.
// Rows are kPad floats longer than their width, so consecutive rows start 4 banks apart.
//
// The products are warp-level 16x16 tiles through a policy: Tf32Mma (tensor cores, WMMA) or
// SimtFp32 (fp32 FMAs). The per-row softmax work and the output rescaling read and write the
// shared tiles, so nothing depends on the accumulators' register layout.
//
// Global memory holds T = float or bf16 (the params structs, the kernels and the row loads and
// stores are templates over it): a bf16 element is widened to float as it is loaded into the fp32
// shared tiles (exact) and a result is rounded to bf16 (nearest even) as it is stored, so the
// tiles, the products and the softmax are the same code for both; with T = float the widening and
// rounding are the identity. lse and D stay float. bf16 runs with Tf32Mma only (the entry points):
// a bf16 value is a TF32 value, so the operand rounding leaves Q, K, V and dout unchanged. The
// shared tiles stay fp32 for bf16 too (the same shared memory; halving it takes a bf16 policy,
// flash_tiles.cuh). The bf16 instances are compiled, not yet run on a GPU.
// The building blocks (policies, layouts, loads and stores): flash_tiles.cuh.
#pragma once
#include "autograd/kernels/cuda/flash_tiles.cuh"

namespace lmlab::cuda::flash {

// ---- forward ----

// The warp's 16 score rows of key tile j0 in place: S -> P = 2^(s2 - m') with the running max
// m' = max(m, max_j s2_j) over visible keys (masked keys get P = 0), and per row
// alpha = 2^(m - m'), l' = alpha l + sum_j P_j (FlashAttention-2, Algorithm 1).
template <int HSP>
__device__ __forceinline__ void online_softmax(float* smem, const Dims& d, int64_t i0, int64_t j0) {
  using L = FwdSmem<HSP>;
  const int lane = lane_id();
  for (int r = warp_row0(); r < warp_row0() + 16; ++r) {
    float* srow = smem + L::s + r * L::kLdS;
    // Keys up to the row's position are visible (up to Tk - 1 for a padding row past Tq).
    const int64_t pos = d.Tk - d.Tq + i0 + r, last = pos < d.Tk - 1 ? pos : d.Tk - 1;
    float x[kBc / 32], mt = -INFINITY;
#pragma unroll
    for (int t = 0; t < kBc / 32; ++t) {
      const int c = lane + 32 * t;
      x[t] = j0 + c <= last ? srow[c] * d.scale_log2 : -INFINITY;
      mt = fmaxf(mt, x[t]);
    }
    mt = warp_max(mt);
    const float m_old = smem[L::m + r], m_new = fmaxf(m_old, mt);
    const float base = m_new == -INFINITY ? 0.0f : m_new;  // no visible key yet: every P is 0
    float sum = 0.0f;
#pragma unroll
    for (int t = 0; t < kBc / 32; ++t) {
      const float e = exp2f(x[t] - base);
      srow[lane + 32 * t] = e;
      sum += e;
    }
    sum = warp_sum(sum);  // every lane has read m_old before lane 0 can get here
    if (lane == 0) {
      const float alpha = exp2f(m_old - base);
      smem[L::alpha + r] = alpha;
      smem[L::l + r] = alpha * smem[L::l + r] + sum;
      smem[L::m + r] = m_new;
    }
  }
}

// Key tile j0 for the warp's 16 query rows: S = Q K^T, the online softmax, O = alpha O + P V.
template <class Mma, int HSP>
__device__ __forceinline__ void forward_tile(float* smem, const Dims& d, int64_t i0, int64_t j0) {
  using L = FwdSmem<HSP>;
  const int r0 = warp_row0();
  float* s = smem + L::s + r0 * L::kLdS;
  float* o = smem + L::o + r0 * L::kLd;
  typename Mma::Acc acc[kBc / 16];
#pragma unroll
  for (int n = 0; n < kBc / 16; ++n) Mma::zero(acc[n]);
  Mma::template gemm<kBc, HSP, true>(acc, smem + L::q + r0 * L::kLd, L::kLd, smem + L::k, L::kLd);
#pragma unroll
  for (int n = 0; n < kBc / 16; ++n) Mma::store(s + 16 * n, L::kLdS, acc[n]);
  __syncwarp();
  online_softmax<HSP>(smem, d, i0, j0);
  __syncwarp();
  for (int idx = lane_id(); idx < 16 * HSP; idx += 32)
    o[(idx / HSP) * L::kLd + idx % HSP] *= smem[L::alpha + r0 + idx / HSP];
  __syncwarp();
  typename Mma::Acc out[HSP / 16];
#pragma unroll
  for (int n = 0; n < HSP / 16; ++n) Mma::load(out[n], o + 16 * n, L::kLd);
  Mma::template gemm<HSP, kBc, false>(out, s, L::kLdS, smem + L::v, L::kLd);
#pragma unroll
  for (int n = 0; n < HSP / 16; ++n) Mma::store(o + 16 * n, L::kLd, out[n]);
  __syncwarp();
}

// out_i = O_i / l_i and lse_i = (m_i + log2 l_i) ln 2 (natural log) for the warp's rows below Tq.
template <int HSP, class T>
__device__ void forward_finish(const float* smem, const FwdParams<T>& p, int64_t b, int64_t h,
                               int64_t i0) {
  using L = FwdSmem<HSP>;
  T* out = head_ptr(p.out, p.so, b, h);
  float* lse = p.lse + (b * p.d.NH + h) * p.d.Tq;
  for (int r = warp_row0(); r < warp_row0() + 16 && i0 + r < p.d.Tq; ++r) {
    const float l = smem[L::l + r], inv = 1.0f / l;
    for (int64_t c = lane_id(); c < p.d.HS; c += 32)
      out[(i0 + r) * p.so.pos + c] = narrow<T>(smem[L::o + r * L::kLd + c] * inv);
    if (lane_id() == 0) lse[i0 + r] = (smem[L::m + r] + log2f(l)) * kLn2;
  }
}

// Block (query tile, head h, batch b). Query tiles run last first: they see the most keys.
template <class Mma, int HSP, class T>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(const FwdParams<T> p) {
  static_assert(std::is_same_v<typename Mma::Elem, float>, "FwdSmem lays out float tiles");
  using L = FwdSmem<HSP>;
  extern __shared__ __align__(128) float smem[];
  const int64_t h = blockIdx.y, b = blockIdx.z, kvh = h / p.d.G;
  const int64_t i0 = (int64_t(gridDim.x) - 1 - blockIdx.x) * kBr;
  load_rows<kBr, HSP>(smem + L::q, head_ptr(p.q, p.sq, b, h), p.sq.pos, i0, p.d.Tq, p.d.HS);
  for (int idx = threadIdx.x; idx < kBr * L::kLd; idx += kThreads) smem[L::o + idx] = 0.0f;
  for (int r = threadIdx.x; r < kBr; r += kThreads) {
    smem[L::m + r] = -INFINITY;
    smem[L::l + r] = 0.0f;
  }
  const T* k = head_ptr(p.k, p.sk, b, kvh);
  const T* v = head_ptr(p.v, p.sv, b, kvh);
  // Key tiles up to the last key the tile's last row sees (at position Tk - Tq + its index).
  const int64_t last = (i0 + kBr < p.d.Tq ? i0 + kBr : p.d.Tq) - 1 + p.d.Tk - p.d.Tq;
  for (int64_t j0 = 0; j0 <= last; j0 += kBc) {
    __syncthreads();  // every warp is done with the previous K and V tiles
    load_rows<kBc, HSP>(smem + L::k, k, p.sk.pos, j0, p.d.Tk, p.d.HS);
    load_rows<kBc, HSP>(smem + L::v, v, p.sv.pos, j0, p.d.Tk, p.d.HS);
    __syncthreads();
    forward_tile<Mma, HSP>(smem, p.d, i0, j0);
  }
  forward_finish<HSP>(smem, p, b, h, i0);
}

// ---- backward ----

// D_i = dout_i . out_i for every row (b, h, i), one warp per row: the softmax Jacobian's row term
// sum_j a_ij datt_ij, since out_i = sum_j a_ij v_j and datt_ij = dout_i . v_j. dout is rounded as
// the datt product rounds it (Mma::operand), so that D matches the datt the tiles compute and each
// row's dscores sum to zero as they should (with TF32 at T = 1, dq = dk = 0 exactly). With
// T = bf16, out and dout are widened (dout is then unchanged by the TF32 rounding) and out is the
// forward's stored, rounded out, as in FlashAttention's own bf16 kernels: D then differs from
// sum_j a_ij datt_ij by dout_i . (out_i - bf16(out_i)), ~2^-9 relative.
template <class Mma, class T>
__global__ void flash_rowdot_kernel(const T* out, HeadStrides so, const T* dout, HeadStrides sdo,
                                    float* D, int64_t NH, int64_t Tq, int64_t HS, int64_t rows) {
  const int64_t per_block = blockDim.x / 32, warps = int64_t(gridDim.x) * per_block;
  for (int64_t row = blockIdx.x * per_block + threadIdx.x / 32; row < rows; row += warps) {
    const int64_t i = row % Tq, b = row / Tq / NH, h = row / Tq % NH;
    const T* o = head_ptr(out, so, b, h) + i * so.pos;
    const T* g = head_ptr(dout, sdo, b, h) + i * sdo.pos;
    float acc = 0.0f;
    for (int64_t c = lane_id(); c < HS; c += 32) acc += widen(o[c]) * Mma::operand(widen(g[c]));
    acc = warp_sum(acc);
    if (lane_id() == 0) D[row] = acc;
  }
}

// Query tile i0 (one head) against the warp's 16 keys j0 + r0 ..; the score tiles are transposed
// (key rows, query columns). With a = 2^(s2 - lse2) where the key is visible to the row, else 0:
//   P^T = a^T;  dP^T = V dout^T (datt);  dS^T = P^T (dP^T - D)  (the softmax Jacobian)
//   dv += P^T dout;  dk += dS^T Q  (times scale at the end)
template <class Mma, int HSP>
__device__ __forceinline__ void dkdv_tile(float* smem, typename Mma::Acc (&dk)[HSP / 16],
                                          typename Mma::Acc (&dv)[HSP / 16], const Dims& d,
                                          int64_t i0, int64_t j0) {
  using L = BwdSmem<HSP>;
  const int r0 = warp_row0();
  float* s = smem + L::s + r0 * L::kLdS;
  float* dp = smem + L::dp + r0 * L::kLdS;
  typename Mma::Acc acc[kBr / 16];
#pragma unroll
  for (int n = 0; n < kBr / 16; ++n) Mma::zero(acc[n]);
  Mma::template gemm<kBr, HSP, true>(acc, smem + L::k + r0 * L::kLd, L::kLd, smem + L::q, L::kLd);
#pragma unroll
  for (int n = 0; n < kBr / 16; ++n) {
    Mma::store(s + 16 * n, L::kLdS, acc[n]);
    Mma::zero(acc[n]);
  }
  Mma::template gemm<kBr, HSP, true>(acc, smem + L::v + r0 * L::kLd, L::kLd, smem + L::dout,
                                     L::kLd);
#pragma unroll
  for (int n = 0; n < kBr / 16; ++n) Mma::store(dp + 16 * n, L::kLdS, acc[n]);
  __syncwarp();
  for (int idx = lane_id(); idx < 16 * kBr; idx += 32) {
    const int r = idx / kBr, c = idx % kBr;
    const int64_t j = j0 + r0 + r, i = i0 + c;
    const bool seen = i < d.Tq && j <= d.Tk - d.Tq + i;
    const float a = seen ? exp2f(s[r * L::kLdS + c] * d.scale_log2 - smem[L::lse2 + c]) : 0.0f;
    s[r * L::kLdS + c] = a;
    dp[r * L::kLdS + c] = a * (dp[r * L::kLdS + c] - smem[L::D + c]);
  }
  __syncwarp();
  Mma::template gemm<HSP, kBr, false>(dv, s, L::kLdS, smem + L::dout, L::kLd);
  Mma::template gemm<HSP, kBr, false>(dk, dp, L::kLdS, smem + L::q, L::kLd);
}

// Block (key tile, kv head, batch b): sums over the G query heads of the group, in head order, and
// over the query tiles that see a key of the tile, in order; warp w accumulates keys 16w..16w+15.
template <class Mma, int HSP, class T>
__global__ void __launch_bounds__(kThreads) flash_dkdv_kernel(const BwdParams<T> p) {
  static_assert(std::is_same_v<typename Mma::Elem, float>, "BwdSmem lays out float tiles");
  using L = BwdSmem<HSP>;
  extern __shared__ __align__(128) float smem[];
  const Dims& d = p.d;
  const int64_t j0 = int64_t(blockIdx.x) * kBc, kvh = blockIdx.y, b = blockIdx.z;
  load_rows<kBc, HSP>(smem + L::k, head_ptr(p.k, p.sk, b, kvh), p.sk.pos, j0, d.Tk, d.HS);
  load_rows<kBc, HSP>(smem + L::v, head_ptr(p.v, p.sv, b, kvh), p.sv.pos, j0, d.Tk, d.HS);
  typename Mma::Acc dk[HSP / 16], dv[HSP / 16];
#pragma unroll
  for (int n = 0; n < HSP / 16; ++n) {
    Mma::zero(dk[n]);
    Mma::zero(dv[n]);
  }
  // Row i sees key j0 when i >= j0 - (Tk - Tq): the first query tile holding such a row.
  const int64_t first = (j0 > d.Tk - d.Tq ? j0 - (d.Tk - d.Tq) : 0) / kBr * kBr;
  for (int64_t h = kvh * d.G; h < (kvh + 1) * d.G; ++h)
    for (int64_t i0 = first; i0 < d.Tq; i0 += kBr) {
      __syncthreads();  // every warp is done with the previous Q and dout tiles
      load_rows<kBr, HSP>(smem + L::q, head_ptr(p.q, p.sq, b, h), p.sq.pos, i0, d.Tq, d.HS);
      load_rows<kBr, HSP>(smem + L::dout, head_ptr(p.dout, p.sdo, b, h), p.sdo.pos, i0, d.Tq, d.HS);
      const int64_t row0 = (b * d.NH + h) * d.Tq;
      load_row_terms(smem + L::lse2, smem + L::D, p.lse + row0, p.D + row0, i0, d.Tq);
      __syncthreads();
      dkdv_tile<Mma, HSP>(smem, dk, dv, d, i0, j0);
    }
  __syncthreads();  // the K and V loads are done (they span every warp's rows) before the reuse
  // The warp's dk and dv rows go out through its own rows of the K and V tiles.
  const int r0 = warp_row0();
#pragma unroll
  for (int n = 0; n < HSP / 16; ++n) {
    Mma::store(smem + L::k + r0 * L::kLd + 16 * n, L::kLd, dk[n]);
    Mma::store(smem + L::v + r0 * L::kLd + 16 * n, L::kLd, dv[n]);
  }
  __syncwarp();
  store_rows(head_ptr(p.dk, p.sdkv, b, kvh), p.sdkv.pos, smem + L::k, L::kLd, j0, d.Tk, d.HS,
             d.scale);
  store_rows(head_ptr(p.dv, p.sdkv, b, kvh), p.sdkv.pos, smem + L::v, L::kLd, j0, d.Tk, d.HS, 1.0f);
}

// Key tile j0 for the warp's 16 query rows:
//   P = 2^(s2 - lse2) where visible, else 0;  dP = dout V^T;  dS = P (dP - D);  dq += dS K
template <class Mma, int HSP>
__device__ __forceinline__ void dq_tile(float* smem, typename Mma::Acc (&dq)[HSP / 16],
                                        const Dims& d, int64_t i0, int64_t j0) {
  using L = BwdSmem<HSP>;
  const int r0 = warp_row0();
  float* s = smem + L::s + r0 * L::kLdS;
  float* dp = smem + L::dp + r0 * L::kLdS;
  typename Mma::Acc acc[kBc / 16];
#pragma unroll
  for (int n = 0; n < kBc / 16; ++n) Mma::zero(acc[n]);
  Mma::template gemm<kBc, HSP, true>(acc, smem + L::q + r0 * L::kLd, L::kLd, smem + L::k, L::kLd);
#pragma unroll
  for (int n = 0; n < kBc / 16; ++n) {
    Mma::store(s + 16 * n, L::kLdS, acc[n]);
    Mma::zero(acc[n]);
  }
  Mma::template gemm<kBc, HSP, true>(acc, smem + L::dout + r0 * L::kLd, L::kLd, smem + L::v,
                                     L::kLd);
#pragma unroll
  for (int n = 0; n < kBc / 16; ++n) Mma::store(dp + 16 * n, L::kLdS, acc[n]);
  __syncwarp();
  for (int idx = lane_id(); idx < 16 * kBc; idx += 32) {
    const int r = idx / kBc, c = idx % kBc;
    const int64_t i = i0 + r0 + r, j = j0 + c;
    const bool seen = i < d.Tq && j <= d.Tk - d.Tq + i;
    const float a = seen ? exp2f(s[r * L::kLdS + c] * d.scale_log2 - smem[L::lse2 + r0 + r]) : 0.0f;
    dp[r * L::kLdS + c] = a * (dp[r * L::kLdS + c] - smem[L::D + r0 + r]);
  }
  __syncwarp();
  Mma::template gemm<HSP, kBc, false>(dq, dp, L::kLdS, smem + L::k, L::kLd);
}

// Block (query tile, head h, batch b), last tiles first; warp w accumulates rows 16w..16w+15.
template <class Mma, int HSP, class T>
__global__ void __launch_bounds__(kThreads) flash_dq_kernel(const BwdParams<T> p) {
  static_assert(std::is_same_v<typename Mma::Elem, float>, "BwdSmem lays out float tiles");
  using L = BwdSmem<HSP>;
  extern __shared__ __align__(128) float smem[];
  const Dims& d = p.d;
  const int64_t h = blockIdx.y, b = blockIdx.z, kvh = h / d.G;
  const int64_t i0 = (int64_t(gridDim.x) - 1 - blockIdx.x) * kBr;
  load_rows<kBr, HSP>(smem + L::q, head_ptr(p.q, p.sq, b, h), p.sq.pos, i0, d.Tq, d.HS);
  load_rows<kBr, HSP>(smem + L::dout, head_ptr(p.dout, p.sdo, b, h), p.sdo.pos, i0, d.Tq, d.HS);
  const int64_t row0 = (b * d.NH + h) * d.Tq;
  load_row_terms(smem + L::lse2, smem + L::D, p.lse + row0, p.D + row0, i0, d.Tq);
  typename Mma::Acc dq[HSP / 16];
#pragma unroll
  for (int n = 0; n < HSP / 16; ++n) Mma::zero(dq[n]);
  const T* k = head_ptr(p.k, p.sk, b, kvh);
  const T* v = head_ptr(p.v, p.sv, b, kvh);
  const int64_t last = (i0 + kBr < d.Tq ? i0 + kBr : d.Tq) - 1 + d.Tk - d.Tq;
  for (int64_t j0 = 0; j0 <= last; j0 += kBc) {
    __syncthreads();  // every warp is done with the previous K and V tiles
    load_rows<kBc, HSP>(smem + L::k, k, p.sk.pos, j0, d.Tk, d.HS);
    load_rows<kBc, HSP>(smem + L::v, v, p.sv.pos, j0, d.Tk, d.HS);
    __syncthreads();
    dq_tile<Mma, HSP>(smem, dq, d, i0, j0);
  }
  __syncthreads();  // the Q loads are done (they span every warp's rows) before the reuse
  const int r0 = warp_row0();
#pragma unroll
  for (int n = 0; n < HSP / 16; ++n) Mma::store(smem + L::q + r0 * L::kLd + 16 * n, L::kLd, dq[n]);
  __syncwarp();
  store_rows(head_ptr(p.dq, p.sdq, b, h), p.sdq.pos, smem + L::q, L::kLd, i0, d.Tq, d.HS, d.scale);
}

}  // namespace lmlab::cuda::flash
