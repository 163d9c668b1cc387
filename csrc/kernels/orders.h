// Validation of the visiting orders of the asynchronous kernels: plain C++17, no XLA.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/pattern.h"

namespace darnax {

// How a batch's orders are laid out: (S, N) or (S, sweeps, N) int32, S = 1 when `shared` by
// every sample, else B; `sweeps` 1 (one order for every sweep) or n_sweeps (one per sweep).
struct OrderLayout {
  bool shared = true;
  int64_t sweeps = 1;
};

// Checks the orders of a (batch, n) call of n_sweeps sweeps: their shape `dims` and that every
// row of `order` is a permutation of 0..n-1. Returns "" (and fills `layout`) or a message.
inline std::string check_orders(const int32_t* order, const std::vector<int64_t>& dims,
                                int64_t batch, int64_t n, int64_t n_sweeps, OrderLayout& layout) {
  const size_t rank = dims.size();
  layout.sweeps = rank == 2 ? 1 : (rank == 3 ? dims[1] : -1);
  if (layout.sweeps < 0 || (dims[0] != batch && dims[0] != 1) || dims[rank - 1] != n ||
      (layout.sweeps != 1 && layout.sweeps != n_sweeps)) {
    std::string got = "(";
    for (size_t d = 0; d < rank; ++d) got += (d ? ", " : "") + std::to_string(dims[d]);
    const std::string lead = "(1 or " + std::to_string(batch) + ", ";
    return "order: expected shape " + lead + std::to_string(n) + ") or " + lead +
           std::to_string(n_sweeps) + ", " + std::to_string(n) + "), got " + got +
           (rank == 1 ? ",)" : ")");
  }
  layout.shared = dims[0] == 1;
  std::vector<char> seen;
  for (int64_t r = 0; r < dims[0] * layout.sweeps; ++r) {
    std::string err = check_permutation(order + r * n, n, seen);
    if (!err.empty()) return err;
  }
  return "";
}

}  // namespace darnax
