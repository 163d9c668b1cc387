// Compressed sparsity patterns shared by all darnax kernels: plain C++17, no XLA, no nanobind.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace darnax {

// One orientation of a (rows x cols) pattern compressed along its "outer" axis:
// entries of outer slot o are idx[ptr[o] .. ptr[o + 1]), each an index along the inner axis.
struct Compressed {
  const int32_t* ptr;  // (n_outer + 1,)
  const int32_t* idx;  // (nnz,)
  int64_t n_outer;
  int64_t n_inner;
  int64_t nnz;
};

// True when a[0..n) all lie in [0, bound): one branch-free, vectorisable pass (an unsigned
// compare sends negative values above any bound), so that per-call checks cost little beside
// the kernels they guard.
inline bool all_in_range(const int32_t* a, int64_t n, int64_t bound) {
  const uint32_t limit = static_cast<uint32_t>(std::min<int64_t>(bound, int64_t{1} << 31));
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= static_cast<uint32_t>(a[i]) >= limit;
  return bad == 0;
}

// True when some ptr[o + 1] < ptr[o] or some idx[p] lies outside [0, n_inner).
inline bool compressed_has_error(const Compressed& c) {
  uint32_t decreases = 0;
  for (int64_t o = 0; o < c.n_outer; ++o) decreases |= c.ptr[o + 1] < c.ptr[o];
  return decreases != 0 || !all_in_range(c.idx, c.nnz, c.n_inner);
}

// Checks that `c` can be read without going out of bounds: ptr starts at 0, never decreases,
// ends at nnz, and every idx lies in [0, n_inner). Returns "" when valid, else a message.
inline std::string check_compressed(const Compressed& c, const char* name) {
  if (c.n_outer < 0 || c.n_inner < 0 || c.nnz < 0) return std::string(name) + ": negative size";
  if (c.ptr[0] != 0)
    return std::string(name) + ": pointer array must start at 0, got " + std::to_string(c.ptr[0]);
  if (c.ptr[c.n_outer] != c.nnz)
    return std::string(name) + ": pointer array must end at nnz=" + std::to_string(c.nnz) +
           ", got " + std::to_string(c.ptr[c.n_outer]);
  if (!compressed_has_error(c)) return "";
  for (int64_t o = 0; o < c.n_outer; ++o) {
    if (c.ptr[o + 1] < c.ptr[o])
      return std::string(name) + ": pointer array decreases at slot " + std::to_string(o);
  }
  for (int64_t p = 0; p < c.nnz; ++p) {
    if (c.idx[p] < 0 || c.idx[p] >= c.n_inner)
      return std::string(name) + ": index " + std::to_string(c.idx[p]) + " at position " +
             std::to_string(p) + " is outside [0, " + std::to_string(c.n_inner) + ")";
  }
  return "";
}

// A pattern in both orientations. Weight values are stored in column (CSC) order;
// `csr_pos[q]` is the position in that value array of the q-th entry in row (CSR) order.
struct Pattern {
  Compressed by_col;  // outer = output column k, inner = input row i
  Compressed by_row;  // outer = input row i, inner = output column k
  const int32_t* csr_pos;
};

inline std::string check_pattern(const Pattern& p) {
  std::string err = check_compressed(p.by_col, "col_ptr/row_idx");
  if (err.empty()) err = check_compressed(p.by_row, "row_ptr/col_idx");
  if (!err.empty()) return err;
  if (p.by_col.nnz != p.by_row.nnz || p.by_col.n_outer != p.by_row.n_inner ||
      p.by_col.n_inner != p.by_row.n_outer)
    return "the two orientations of the pattern disagree on shape or nnz";
  if (all_in_range(p.csr_pos, p.by_row.nnz, p.by_col.nnz)) return "";
  for (int64_t q = 0; q < p.by_row.nnz; ++q) {
    if (p.csr_pos[q] < 0 || p.csr_pos[q] >= p.by_col.nnz)
      return "csr_pos: entry " + std::to_string(q) + " is outside [0, nnz)";
  }
  return "";
}

// Checks that order[0..n) is a permutation of 0..n-1.
inline std::string check_permutation(const int32_t* order, int64_t n, std::vector<char>& seen) {
  seen.assign(static_cast<size_t>(n), 0);
  for (int64_t t = 0; t < n; ++t) {
    const int32_t i = order[t];
    if (i < 0 || i >= n || seen[i])
      return "order: not a permutation of 0.." + std::to_string(n - 1) + " (entry " +
             std::to_string(t) + " is " + std::to_string(i) + ")";
    seen[i] = 1;
  }
  return "";
}

}  // namespace darnax
