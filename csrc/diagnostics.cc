// Diagnostics of the darnax._ext module: kernel threads, scratch buffers, sparse_outer's work
// counters and test-only fault injection.
#include <nanobind/nanobind.h>

#include <cstdint>

#include "kernels/fault.h"
#include "kernels/outer_work.h"
#include "kernels/parallel.h"
#include "kernels/scratch.h"
#include "release_gil.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace darnax {
namespace {

// The kernel threads as the calling thread sees them now, for tests and diagnostics.
nb::dict thread_info() {
  const ThreadSettings& s = ThreadSettings::get();  // throws on a bad value
  nb::dict d;
  d["requested"] = s.requested;  // DARNAX_NUM_THREADS (0: unset)
  d["threads"] = num_threads();
  d["cpus"] = CallerCpus::local().count;
  d["oversubscribe"] = s.oversubscribe;
  int64_t workers = 0;
  {
    ReleaseGil release;  // waits for a job in flight (no Python object is touched meanwhile)
    workers = ThreadPool::instance().workers();
  }
  d["workers"] = workers;
  return d;
}

// The calling thread's kept scratch buffers (see ScratchCache), for tests and diagnostics.
nb::dict scratch_info() {
  const ScratchCache& cache = ScratchCache::local();
  nb::dict d;
  d["buffers"] = cache.kept();
  d["bytes"] = cache.kept_bytes();
  d["largest"] = cache.largest_kept();
  d["max_kept"] = ScratchCache::kMaxKept;
  return d;
}

// sparse_outer's work since the last reset (see OuterWork): calls, (entry, sample) products
// computed and skipped for zero errors, wall seconds, and whether the shortcuts are on.
nb::dict sparse_outer_work() {
  nb::dict d;
  d["calls"] = OuterWork::calls.load();
  d["computed"] = OuterWork::computed.load();
  d["skipped"] = OuterWork::skipped.load();
  d["seconds"] = 1e-9 * static_cast<double>(OuterWork::nanoseconds.load());
  d["skipping"] = OuterWork::skipping.load();
  return d;
}

// Test-only: the next `count` scratch allocations (only those on pool workers if
// `workers_only`) ask for 2^62 more bytes than they need, so they fail for real.
void testing_fail_allocations(int64_t count, bool workers_only) {
  FaultInjection::workers_only.store(workers_only);
  FaultInjection::remaining.store(count);
}

}  // namespace

void bind_diagnostics(nb::module_& m) {
  m.def("thread_info", &thread_info,
        "Kernel threads for the calling thread now: {requested, threads, cpus, oversubscribe, "
        "workers}; raises ValueError for a bad DARNAX_NUM_THREADS.");
  m.def("scratch_info", &scratch_info,
        "The calling thread's kept kernel scratch buffers: {buffers, bytes, largest, max_kept}.");
  m.def("sparse_outer_work", &sparse_outer_work,
        "sparse_outer's work since the last reset: {calls, computed, skipped, seconds, skipping} "
        "(products of an entry and a sample computed, or skipped because the sample's error is 0).");
  m.def("reset_sparse_outer_work", &OuterWork::reset, "Zero sparse_outer_work's counters.");
  m.def(
      "set_sparse_outer_skipping",
      [](bool on) { return OuterWork::skipping.exchange(on); }, "on"_a,
      "Switch sparse_outer's zero-error shortcuts on or off (for benchmarks: the results are the "
      "same bit for bit); returns the previous setting.");
  m.def("testing_fail_allocations", &testing_fail_allocations, "count"_a, "workers_only"_a = false,
        "Test-only: make the next `count` kernel scratch allocations fail (std::bad_alloc).");
}

}  // namespace darnax
