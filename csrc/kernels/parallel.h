// A fork-join loop over contiguous chunks on a small persistent pool of known size
// (never XLA's own pool), so that no call pays for starting threads.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace darnax {

// Minimum work (multiply-adds or field updates) worth a thread of its own.
constexpr double kMinWorkPerThread = 2e5;

#ifdef __linux__
// The CPUs this process may run on (its affinity mask); an empty set where it cannot be read.
inline cpu_set_t process_cpus() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) CPU_ZERO(&allowed);
  return allowed;
}
#endif

// Threads per call: DARNAX_NUM_THREADS if set (>= 1), else the CPUs this process may run on
// (its affinity mask on Linux, as JAX sizes its own pool; the hardware concurrency elsewhere),
// read at the first kernel call.
inline int64_t num_threads() {
  static const int64_t n = [] {
    const char* env = std::getenv("DARNAX_NUM_THREADS");
    const long v = env ? std::strtol(env, nullptr, 10) : 0;
    if (v >= 1) return static_cast<int64_t>(v);
#ifdef __linux__
    const cpu_set_t allowed = process_cpus();
    if (CPU_COUNT(&allowed) > 0) return static_cast<int64_t>(CPU_COUNT(&allowed));
#endif
    return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  }();
  return n;
}

// num_threads() - 1 workers that run the chunks of one job at a time alongside the caller.
// A caller that finds the pool busy (another XLA thread's job, or its own: a chunk that calls
// run() again), or runs in a forked child (where the workers do not exist), runs its chunks
// itself: slower, same result.
// Lifetime rule: run() returns only once every worker that joined the job has left it, so no
// worker ever touches a finished job's function or counters.
class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool(num_threads() - 1);
    return pool;
  }

  // Calls chunk(c) for every c in [0, chunks), the caller taking part; returns when all are done.
  void run(int64_t chunks, const std::function<void(int64_t)>& chunk) {
    if (in_chunk_) {  // a nested job: the pool is ours already (try_lock on it would be UB)
      for (int64_t c = 0; c < chunks; ++c) chunk(c);
      return;
    }
    std::unique_lock<std::mutex> busy(job_mutex_, std::try_to_lock);
    if (!busy.owns_lock() || workers_.empty() || getpid() != owner_pid_) {
      for (int64_t c = 0; c < chunks; ++c) chunk(c);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &chunk;
      chunks_ = chunks;
      next_.store(0);
      pending_.store(chunks);
      generation_.fetch_add(1, std::memory_order_release);
    }
    move_workers_off_this_cpu();
    wake_.notify_all();
    work(chunk);
    // Spin before sleeping: a caller that sleeps in a futex is woken by an inter-processor
    // interrupt, which costs tens of microseconds on a virtual machine (measured: 16 µs of a
    // 41 µs two-chunk job), while the other chunks usually end within microseconds of its own.
    spin_while([this] { return pending_.load(std::memory_order_acquire) != 0 || inside_.load() != 0; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load() == 0 && inside_.load() == 0; });
    job_ = nullptr;
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) {
      if (getpid() == owner_pid_) w.join();
      else w.detach();
    }
  }

 private:
  explicit ThreadPool(int64_t n_workers)
      : owner_pid_(getpid()), worker_cpu_(new std::atomic<int>[static_cast<size_t>(n_workers)]) {
#ifdef __linux__
    allowed_ = process_cpus();
#endif
    for (int64_t i = 0; i < n_workers; ++i) {
      worker_cpu_[i].store(-1);
      workers_.emplace_back([this, i] { loop(i); });
    }
  }

  // The CPU the calling thread runs on, or -1 where unknown.
  static int current_cpu() {
#ifdef __linux__
    return sched_getcpu();
#else
    return -1;
#endif
  }

  // Keeps each worker off the caller's CPU. The scheduler can leave a spinning worker on the
  // same CPU as the thread that posts the jobs for many jobs in a row (seen under XLA: the job
  // then runs on one CPU, the worker joining only once the caller is done); such a worker is
  // restricted to the process's other CPUs, which costs one system call per collision.
  void move_workers_off_this_cpu() {
#ifdef __linux__
    const int me = current_cpu();
    if (me < 0 || me >= CPU_SETSIZE || !CPU_ISSET(me, &allowed_) || CPU_COUNT(&allowed_) < 2) return;
    for (size_t w = 0; w < workers_.size(); ++w) {
      if (worker_cpu_[w].load(std::memory_order_relaxed) != me) continue;
      cpu_set_t others = allowed_;
      CPU_CLR(me, &others);
      if (pthread_setaffinity_np(workers_[w].native_handle(), sizeof(others), &others) == 0)
        worker_cpu_[w].store(-1, std::memory_order_relaxed);
    }
#endif
  }

  // Takes chunks of the current job until none is left; the last one done wakes the caller.
  void work(const std::function<void(int64_t)>& chunk) {
    for (int64_t c = next_.fetch_add(1); c < chunks_; c = next_.fetch_add(1)) {
      in_chunk_ = true;
      chunk(c);
      in_chunk_ = false;
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
  }

  // Spins while busy() holds, for at most kSpinMicros, yielding the CPU on each turn (to a
  // thread that shares it: XLA's, or the pool's own when the scheduler put two on one CPU).
  template <typename Busy>
  static void spin_while(Busy&& busy) {
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    while (busy() && std::chrono::steady_clock::now() < spin_until) std::this_thread::yield();
  }

  // Between jobs a worker spins for a short while before sleeping: kernel calls come back to
  // back during training, and waking a sleeping thread costs tens of microseconds. A worker
  // woken too late (its job already done) spins again rather than going back to sleep: else
  // every later wake-up would come too late as well, and the caller would work alone.
  void loop(int64_t w) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int64_t)>* job = nullptr;
      spin_while([&] {
        worker_cpu_[w].store(current_cpu(), std::memory_order_relaxed);
        return generation_.load(std::memory_order_acquire) == seen;
      });
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
        if (stop_) return;
        seen = generation_.load();
        job = job_;
        if (job == nullptr) continue;  // too late: that job has ended
        ++inside_;  // joined: the caller waits for this worker to leave
      }
      work(*job);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--inside_ == 0) done_.notify_all();
    }
  }

  static constexpr int64_t kSpinMicros = 200;
  static inline thread_local bool in_chunk_ = false;  // this thread runs a chunk of a job
  const pid_t owner_pid_;
  std::vector<std::thread> workers_;
  std::unique_ptr<std::atomic<int>[]> worker_cpu_;  // where each worker last spun (-1: unknown)
#ifdef __linux__
  cpu_set_t allowed_;  // the process's CPUs when the pool started
#endif
  std::mutex job_mutex_;  // one job at a time
  std::mutex mutex_;      // guards job_, chunks_ and stop_, and orders joining and leaving
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t chunks_ = 0;
  std::atomic<int64_t> pending_{0};  // chunks not yet finished
  std::atomic<int64_t> inside_{0};   // workers that joined the current job and have not left
  std::atomic<int64_t> next_{0};
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

// Calls fn(begin, end) on disjoint chunks covering [0, n). Work is split only when each chunk
// gets at least kMinWorkPerThread-sized work (cost_per_item per item), so small calls stay on
// the calling thread. Each item is processed by exactly one call in a fixed order, so results
// never depend on the number of threads.
template <typename Fn>
void parallel_for(int64_t n, double cost_per_item, double min_work, Fn&& fn) {
  const double total = cost_per_item * static_cast<double>(n);
  const int64_t by_work = static_cast<int64_t>(total / std::max(min_work, 1.0));
  const int64_t chunks = std::max<int64_t>(1, std::min({num_threads(), n, by_work}));
  if (chunks == 1) {
    fn(int64_t{0}, n);
    return;
  }
  ThreadPool::instance().run(chunks, [&](int64_t c) { fn(c * n / chunks, (c + 1) * n / chunks); });
}

}  // namespace darnax
