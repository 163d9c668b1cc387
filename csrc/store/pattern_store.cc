// The pattern store: validation, the row orientation, content keys and weak, shared ownership.
#include "store/pattern_store.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace darnax {

Compressed StoredPattern::by_col() const {
  return Compressed{col_ptr_.data(), row_idx_.data(), n_cols_, n_rows_, nnz()};
}

Pattern StoredPattern::both() const {
  const Rows& r = by_rows();
  return Pattern{by_col(), Compressed{r.row_ptr.data(), r.col_idx.data(), n_rows_, n_cols_, nnz()},
                 r.csr_pos.data()};
}

// The row orientation by a counting sort: rows in order, each row's entries by column.
const StoredPattern::Rows& StoredPattern::by_rows() const {
  std::call_once(rows_once_, [this] {
    rows_.row_ptr.assign(static_cast<size_t>(n_rows_) + 1, 0);
    for (const int32_t i : row_idx_) ++rows_.row_ptr[i + 1];
    for (int64_t i = 0; i < n_rows_; ++i) rows_.row_ptr[i + 1] += rows_.row_ptr[i];
    rows_.col_idx.resize(row_idx_.size());
    rows_.csr_pos.resize(row_idx_.size());
    std::vector<int32_t> next(rows_.row_ptr.begin(), rows_.row_ptr.end() - 1);
    for (int64_t k = 0; k < n_cols_; ++k)
      for (int32_t q = col_ptr_[k]; q < col_ptr_[k + 1]; ++q) {
        const int32_t slot = next[row_idx_[q]]++;
        rows_.col_idx[slot] = static_cast<int32_t>(k);
        rows_.csr_pos[slot] = q;
      }
  });
  return rows_;
}

namespace {

[[noreturn]] void reject(const std::string& message) { throw std::invalid_argument(message); }

// The checks of SparsityPattern, again on the C++ side: col_ptr runs from 0 to nnz without
// decreasing; rows lie in [0, n_rows) and strictly increase inside each column.
void validate(int64_t n_rows, int64_t n_cols, const int32_t* col_ptr, const int32_t* row_idx,
              int64_t nnz) {
  if (n_rows < 0 || n_cols < 0 || n_rows > INT32_MAX || n_cols > INT32_MAX || nnz > INT32_MAX)
    reject("shape: expected 0 <= d, K < 2^31 and nnz < 2^31, got (" + std::to_string(n_rows) +
           ", " + std::to_string(n_cols) + ") with nnz " + std::to_string(nnz));
  bool monotone = col_ptr[0] == 0 && col_ptr[n_cols] == nnz;
  for (int64_t k = 0; monotone && k < n_cols; ++k) monotone = col_ptr[k] <= col_ptr[k + 1];
  if (!monotone)
    reject("col_ptr: expected non-decreasing from 0 to nnz=" + std::to_string(nnz) +
           ", got start " + std::to_string(col_ptr[0]) + ", end " +
           std::to_string(col_ptr[n_cols]));
  if (!all_in_range(row_idx, nnz, n_rows)) {
    const auto [lo, hi] = std::minmax_element(row_idx, row_idx + nnz);
    reject("row_idx: expected entries in [0, " + std::to_string(n_rows) + "), got [" +
           std::to_string(*lo) + ", " + std::to_string(*hi) + "]");
  }
  for (int64_t k = 0; k < n_cols; ++k)
    for (int64_t p = col_ptr[k] + 1; p < col_ptr[k + 1]; ++p)
      if (row_idx[p] <= row_idx[p - 1])
        reject("row_idx: rows must be strictly increasing inside each column (sorted, no "
               "duplicates); column " + std::to_string(k) + " is not");
}

// A 64-bit digest of the shape and the column orientation (which determines the rest).
uint64_t content_key(int64_t n_rows, int64_t n_cols, const int32_t* col_ptr,
                     const int32_t* row_idx, int64_t nnz) {
  uint64_t h = 0x243F6A8885A308D3ull;
  auto mix = [&h](uint64_t word) {
    h = (h ^ word) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  };
  mix(static_cast<uint64_t>(n_rows));
  mix(static_cast<uint64_t>(n_cols));
  for (int64_t k = 0; k <= n_cols; ++k) mix(static_cast<uint32_t>(col_ptr[k]));
  for (int64_t p = 0; p < nnz; ++p) mix(static_cast<uint32_t>(row_idx[p]));
  return h;
}

bool same_content(const StoredPattern& a, int64_t n_rows, int64_t n_cols, const int32_t* col_ptr,
                  const int32_t* row_idx, int64_t nnz) {
  return a.n_rows() == n_rows && a.n_cols() == n_cols && a.nnz() == nnz &&
         std::equal(col_ptr, col_ptr + n_cols + 1, a.col_ptr().begin()) &&
         std::equal(row_idx, row_idx + nnz, a.row_idx().begin());
}

}  // namespace

// The map from keys to live patterns; never destroyed, so that a pattern released during
// interpreter shutdown (by a compiled program's state, say) still finds it.
class PatternStore {
 public:
  static PatternStore& instance() {
    static PatternStore* store = new PatternStore();
    return *store;
  }

  PatternRef store(int64_t n_rows, int64_t n_cols, const int32_t* col_ptr,
                   const int32_t* row_idx, int64_t nnz) {
    validate(n_rows, n_cols, col_ptr, row_idx, nnz);
    const uint64_t key = content_key(n_rows, n_cols, col_ptr, row_idx, nnz);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (PatternRef live = find_locked(key)) {
        if (!same_content(*live, n_rows, n_cols, col_ptr, row_idx, nnz))
          throw std::runtime_error("darnax: two different sparsity patterns share the content key " +
                                   std::to_string(key) + "; please report this");
        return live;
      }
    }
    PatternRef made(build(n_rows, n_cols, col_ptr, row_idx, nnz, key), release);
    std::lock_guard<std::mutex> lock(mutex_);
    if (PatternRef live = find_locked(key)) return live;  // stored meanwhile by another thread
    live_[key] = made;
    return made;
  }

  PatternRef find(uint64_t key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return find_locked(key);
  }

  int64_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t n = 0;
    for (const auto& entry : live_) n += !entry.second.expired();
    return n;
  }

 private:
  PatternRef find_locked(uint64_t key) const {
    const auto it = live_.find(key);
    return it == live_.end() ? nullptr : it->second.lock();
  }

  // A copy of the column orientation; square patterns (the sign dynamics') get their rows now.
  static StoredPattern* build(int64_t n_rows, int64_t n_cols, const int32_t* col_ptr,
                              const int32_t* row_idx, int64_t nnz, uint64_t key) {
    auto* p = new StoredPattern();
    p->n_rows_ = n_rows;
    p->n_cols_ = n_cols;
    p->key_ = key;
    p->col_ptr_.assign(col_ptr, col_ptr + n_cols + 1);
    p->row_idx_.assign(row_idx, row_idx + nnz);
    if (p->square()) p->by_rows();
    return p;
  }

  // The deleter of every stored pattern: drops its (expired) entry, then the pattern.
  static void release(const StoredPattern* p) {
    {
      PatternStore& self = instance();
      std::lock_guard<std::mutex> lock(self.mutex_);
      const auto it = self.live_.find(p->key());
      if (it != self.live_.end() && it->second.expired()) self.live_.erase(it);
    }
    delete p;
  }

  std::mutex mutex_;
  std::unordered_map<uint64_t, std::weak_ptr<const StoredPattern>> live_;
};

PatternRef store_pattern(int64_t n_rows, int64_t n_cols, const int32_t* col_ptr,
                         const int32_t* row_idx, int64_t nnz) {
  return PatternStore::instance().store(n_rows, n_cols, col_ptr, row_idx, nnz);
}

PatternRef find_pattern(uint64_t key) { return PatternStore::instance().find(key); }

int64_t stored_pattern_count() { return PatternStore::instance().count(); }

}  // namespace darnax
