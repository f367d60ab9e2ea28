// Package lowrank owns low-rank factorisation of projection matrices: a
// row-major [out, in] matrix W (m×n, y = W·x) becomes A·B with A m×k and
// B k×n, which saves parameters when k·(m+n) < m·n.
//
// Methods (Method):
//
//   - svd: plain truncated SVD, minimising ||W − AB||_F.
//   - whiten: SVD-LLM. With calibration inputs X (n×N) and C = X Xᵀ/N, it
//     truncates the SVD of W·S where S Sᵀ = C, which minimises the output
//     error ||(W − AB)·X||_F; that error equals Σ_{i>k} σ_i(W·S)² exactly.
//     S is the Cholesky factor, with escalating jitter 1e-6·mean(diag C)·10^t
//     when C is singular, and SVD-LLM V2's eigendecomposition
//     S = Q·diag(sqrt(max(λ, ε))) as the last resort, so singular statistics
//     (dead or duplicated inputs) never fail and never give NaN.
//   - asvd: scale column j by s_j = (mean|x_j|)^α (α = 0.5 by default),
//     truncate, unscale.
//   - lorc: the caller passes the quantisation residual W − Q(W) (Residual)
//     and stores Q(W) + A·B; whitened when Options.LoRCWhiten is set.
//
// In every method the product is AB = U_k·U_kᵀ·W, with U_k the top-k left
// singular vectors of the transformed matrix M = W·T; no inverse of T is
// needed except on the right-Gram route below. Each rank-one term is
// balanced (equal norms in A and B).
//
// Calibration statistics (Stats) accumulate Σ x·xᵀ, Σ|x| and a count per
// linear-layer input, vector by vector (Add) or in batches (AddBatch), and
// merge across workers (Merge). The whitening decomposition is cached in the
// Stats and shared by all projections reading that input.
//
// Rank selection: RankSpec (fixed rank, parameter ratio or energy);
// AllocateRanks spreads a global parameter budget over many matrices given
// their spectra (ComputeSpectrum); WorthFactoring compares encoded sizes.
//
// Numerical routes (Options.Route, chosen automatically by default):
//
//   - gram: eigendecomposition of the smaller Gram matrix, M·Mᵀ = W·C·Wᵀ
//     (m ≤ n) or Mᵀ·M (m > n, then B = V_kᵀ·T⁻¹). gonum's symmetric
//     eigensolver with vectors is as slow as its SVD, so the
//     package runs its own blocked Householder tridiagonalisation (parallel
//     symmetric matrix–vector products, rank-2·nb updates as packed
//     products), gonum's eigenvalue stage, inverse iteration on the
//     tridiagonal matrix for the top-k eigenvectors only, and a blocked
//     (compact WY) back-transform. All singular values are returned. σ_i
//     carries relative error ≈ 1e-16·(σ₁/σ_i)²; the truncated product is
//     built from orthonormal vectors only, so tiny σ never blow up the
//     factors.
//   - randomized: Halko et al. range finder with oversampling and power
//     iterations, for small k (k+p ≤ min(m,n)/8); only the top k+p singular
//     values are estimated.
//   - exact: gonum's full SVD; the reference, and used for tiny matrices.
//
// All arithmetic is float64. Large products run on a packed,
// register-blocked GEMM (dgemm.go: AVX-512 or AVX2/FMA micro-kernels on
// amd64, plain Go elsewhere) whose tiles are shared by the goroutines of
// the call's thread budget (Options.Threads, default GOMAXPROCS), with
// variants for symmetric results and triangular factors, because gonum's
// Dgemm is several times slower on this work (BENCHMARKS.md and
// BENCHMARK.md have the figures). Long operations take a context and stop
// between stages. Every parallel section goes through one errgroup helper
// (par.go) bounded by the budget, and the split of the work does not
// depend on it, so the factors are the same bits whatever Threads is.
package lowrank
