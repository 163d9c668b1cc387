// A process-wide store of validated sparsity patterns, keyed by their content.
//
// A pattern is validated and stored once (O(nnz)); a compiled program then names it by its
// 64-bit key (one integer attribute), so the program's text and compile time do not grow with
// nnz. The store holds patterns weakly: a pattern lives while someone holds its PatternRef
// (the Python SparsityPattern, or a compiled call that instantiated it), and leaves the store
// when the last reference goes. Storing equal content twice returns the same pattern.
// Plain C++17: no XLA, no nanobind.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/pattern.h"

namespace darnax {

// A (n_rows, n_cols) pattern in both orientations (see Pattern), owning its index arrays. The
// row orientation of a non-square pattern is derived on first use (the products never need it).
class StoredPattern {
 public:
  int64_t n_rows() const { return n_rows_; }
  int64_t n_cols() const { return n_cols_; }
  int64_t nnz() const { return static_cast<int64_t>(row_idx_.size()); }
  uint64_t key() const { return key_; }
  bool square() const { return n_rows_ == n_cols_; }

  Compressed by_col() const;
  Pattern both() const;

  const std::vector<int32_t>& col_ptr() const { return col_ptr_; }
  const std::vector<int32_t>& row_idx() const { return row_idx_; }
  const std::vector<int32_t>& row_ptr() const { return by_rows().row_ptr; }
  const std::vector<int32_t>& col_idx() const { return by_rows().col_idx; }
  const std::vector<int32_t>& csr_pos() const { return by_rows().csr_pos; }

 private:
  friend class PatternStore;
  struct Rows {
    std::vector<int32_t> row_ptr, col_idx, csr_pos;
  };
  const Rows& by_rows() const;  // derives the row orientation once, thread-safely

  int64_t n_rows_ = 0, n_cols_ = 0;
  uint64_t key_ = 0;
  std::vector<int32_t> col_ptr_, row_idx_;
  mutable std::once_flag rows_once_;
  mutable Rows rows_;
};

using PatternRef = std::shared_ptr<const StoredPattern>;

// Validates a column-compressed pattern (col_ptr (n_cols + 1,) from 0 to nnz, non-decreasing;
// row_idx (nnz,) in [0, n_rows), strictly increasing inside each column), derives its row
// orientation and returns the stored pattern with that content. Throws std::invalid_argument
// naming what is wrong, or std::runtime_error on a (never yet seen) 64-bit key collision.
PatternRef store_pattern(int64_t n_rows, int64_t n_cols, const int32_t* col_ptr,
                         const int32_t* row_idx, int64_t nnz);

// The live stored pattern with this key, or nullptr (never stored, or every reference gone).
PatternRef find_pattern(uint64_t key);

// How many patterns are alive in the store now.
int64_t stored_pattern_count();

}  // namespace darnax
