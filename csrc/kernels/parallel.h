// A fork-join loop over contiguous chunks on a small persistent pool of known size
// (never XLA's own pool), so that no call pays for starting threads.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/fault.h"

namespace darnax {

// Minimum work (multiply-adds or field updates) worth a thread of its own.
constexpr double kMinWorkPerThread = 2e5;

// The environment, read once. DARNAX_NUM_THREADS: unset or empty for one thread per CPU the
// caller may use, else a positive integer (capped at those CPUs unless
// DARNAX_ALLOW_OVERSUBSCRIPTION=1, which tests use to run more chunks than this machine has
// CPUs). Anything else throws std::invalid_argument naming the variable: an ImportError at
// `import darnax.ops`, an FFI error at a kernel call.
struct ThreadSettings {
  int64_t requested = 0;  // 0: not set
  bool oversubscribe = false;

  static const ThreadSettings& get() {
    static const ThreadSettings settings = read();  // a throw leaves it unset: the next call throws
    return settings;
  }

 private:
  static ThreadSettings read() {
    ThreadSettings s;
    const char* env = std::getenv("DARNAX_NUM_THREADS");
    if (env != nullptr && *env != '\0') {
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(env, &end, 10);
      while (end != nullptr && std::isspace(static_cast<unsigned char>(*end))) ++end;
      if (errno != 0 || end == env || *end != '\0' || v < 1)
        throw std::invalid_argument(std::string("DARNAX_NUM_THREADS=") + env +
                                    ": expected a positive integer (kernel threads per call), "
                                    "or unset for one per CPU this process may use");
      s.requested = static_cast<int64_t>(v);
    }
    const char* over = std::getenv("DARNAX_ALLOW_OVERSUBSCRIPTION");
    s.oversubscribe = over != nullptr && std::strcmp(over, "1") == 0;
    return s;
  }
};

// The CPUs the calling thread may run on (its affinity mask), as last read on this thread.
struct CallerCpus {
#ifdef __linux__
  cpu_set_t set;
#endif
  int64_t count = 0;  // 0: not read, or unreadable

  static CallerCpus& local() {
    thread_local CallerCpus cpus;
    return cpus;
  }

  // Reads the mask again (one system call, ~0.2 µs: asked only by calls big enough to split,
  // so that an affinity change made at any time applies from the next such call).
  static int64_t read() {
    CallerCpus& c = local();
    c.count = 0;
#ifdef __linux__
    if (sched_getaffinity(0, sizeof(c.set), &c.set) == 0) c.count = CPU_COUNT(&c.set);
#endif
    if (c.count > 0) return c.count;
    return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  }
};

// Threads for a call that splits now: DARNAX_NUM_THREADS capped at the CPUs the caller may use
// (its affinity mask on Linux, as JAX sizes its own pool), or those CPUs when it is unset.
inline int64_t num_threads() {
  const ThreadSettings& s = ThreadSettings::get();
  const int64_t cpus = CallerCpus::read();
  if (s.requested == 0) return cpus;
  return s.oversubscribe ? s.requested : std::min(s.requested, cpus);
}

// Workers that run the chunks of one job at a time alongside the caller, started as jobs need
// them. A caller that finds the pool busy (another XLA thread's job, or its own: a chunk that
// calls run() again) runs its chunks itself: slower, same result.
// Lifetime rules: run() returns only once every worker that joined the job has left it, so no
// worker ever touches a finished job's function or counters. The pool is never destroyed:
// threads of XLA or Python may still run kernels while the interpreter exits. A forked child
// (which has none of the parent's workers, and may hold its locks in any state) gets a pool of
// its own at its first job.
// Exceptions: a chunk that throws (on any thread) ends the job early (chunks not yet started are
// skipped) and run() rethrows the first exception on the caller's thread, once all have left.
class ThreadPool {
 public:
  static ThreadPool& instance() {
    ThreadPool* pool = current().load(std::memory_order_acquire);
    if (pool != nullptr) return *pool;
    std::lock_guard<std::mutex> lock(creation_mutex());
    pool = current().load(std::memory_order_acquire);
    if (pool == nullptr) {
      static const int registered = pthread_atfork(&before_fork, &after_fork_parent, &after_fork_child);
      (void)registered;
      pool = new ThreadPool();  // never deleted (see above)
      current().store(pool, std::memory_order_release);
    }
    return *pool;
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Calls chunk(c) for every c in [0, chunks), the caller taking part; returns when all are done.
  void run(int64_t chunks, const std::function<void(int64_t)>& chunk) {
    std::unique_lock<std::mutex> busy;
    if (!in_chunk_ && chunks > 1) {  // a nested job: the pool is ours already (no try_lock)
      busy = std::unique_lock<std::mutex>(job_mutex_, std::try_to_lock);
      if (busy.owns_lock()) {
        follow_caller_cpus();
        grow(chunks - 1);
      }
    }
    if (!busy.owns_lock() || workers_.empty()) {
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
    std::exception_ptr error = std::move(error_);
    error_ = nullptr;
    failed_.store(false, std::memory_order_relaxed);
    lock.unlock();
    if (error) std::rethrow_exception(error);
  }

  // Workers started so far (waits for a job in flight; for tests).
  int64_t workers() {
    std::lock_guard<std::mutex> lock(job_mutex_);
    return static_cast<int64_t>(workers_.size());
  }

 private:
  struct Worker {
    std::thread thread;
    std::atomic<int> cpu{-1};  // where it last spun (-1: unknown)
  };

  ThreadPool() {
#ifdef __linux__
    CPU_ZERO(&allowed_);
#endif
  }
  ~ThreadPool() = delete;

  static std::atomic<ThreadPool*>& current() {
    static std::atomic<ThreadPool*> pool{nullptr};
    return pool;
  }
  static std::mutex& creation_mutex() {
    static std::mutex m;
    return m;
  }
  // Fork handlers: no pool is being made while fork() copies the process; the child forgets
  // (leaks) the parent's pool, whose workers do not exist in it.
  static void before_fork() { creation_mutex().lock(); }
  static void after_fork_parent() { creation_mutex().unlock(); }
  static void after_fork_child() {
    current().store(nullptr, std::memory_order_release);
    creation_mutex().unlock();
  }

  // Starts workers until there are `n` (fewer if the system refuses threads: the caller then
  // runs more chunks itself). Called with job_mutex_ held and no job in flight. New workers
  // inherit the caller's affinity mask.
  void grow(int64_t n) {
    if (static_cast<int64_t>(workers_.size()) >= n) return;
    try {
      workers_.reserve(static_cast<size_t>(n));
      while (static_cast<int64_t>(workers_.size()) < n) {
        auto w = std::make_unique<Worker>();
        Worker* self = w.get();
        w->thread = std::thread([this, self] { loop(*self); });
        workers_.push_back(std::move(w));  // no reallocation: reserved
      }
    } catch (...) {
    }
  }

  // Restricts the workers to the caller's CPUs when its mask changed since the last job
  // (os.sched_setaffinity or taskset after import): one comparison per job, system calls only
  // on a change.
  void follow_caller_cpus() {
#ifdef __linux__
    CallerCpus& caller = CallerCpus::local();
    if (caller.count == 0) CallerCpus::read();
    if (caller.count == 0 || CPU_EQUAL(&caller.set, &allowed_)) return;
    allowed_ = caller.set;
    for (auto& w : workers_) {
      pthread_setaffinity_np(w->thread.native_handle(), sizeof(allowed_), &allowed_);
      w->cpu.store(-1, std::memory_order_relaxed);
    }
#endif
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
  // restricted to the caller's other CPUs, which costs one system call per collision.
  void move_workers_off_this_cpu() {
#ifdef __linux__
    const int me = current_cpu();
    if (me < 0 || me >= CPU_SETSIZE || !CPU_ISSET(me, &allowed_) || CPU_COUNT(&allowed_) < 2) return;
    for (auto& w : workers_) {
      if (w->cpu.load(std::memory_order_relaxed) != me) continue;
      cpu_set_t others = allowed_;
      CPU_CLR(me, &others);
      if (pthread_setaffinity_np(w->thread.native_handle(), sizeof(others), &others) == 0)
        w->cpu.store(-1, std::memory_order_relaxed);
    }
#endif
  }

  // Takes chunks of the current job until none is left; the last one done wakes the caller.
  // After a failure the remaining chunks are only counted off.
  void work(const std::function<void(int64_t)>& chunk) {
    for (int64_t c = next_.fetch_add(1); c < chunks_; c = next_.fetch_add(1)) {
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          in_chunk_ = true;
          chunk(c);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!error_) error_ = std::current_exception();
          failed_.store(true, std::memory_order_relaxed);
        }
        in_chunk_ = false;
      }
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
  void loop(Worker& self) {
    FaultInjection::on_worker = true;
    uint64_t seen = generation_.load();
    for (;;) {
      const std::function<void(int64_t)>* job = nullptr;
      spin_while([&] {
        self.cpu.store(current_cpu(), std::memory_order_relaxed);
        return generation_.load(std::memory_order_acquire) == seen;
      });
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
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
  std::vector<std::unique_ptr<Worker>> workers_;  // grown under job_mutex_
#ifdef __linux__
  cpu_set_t allowed_;  // the CPUs of the last job's caller; the workers' mask
#endif
  std::mutex job_mutex_;  // one job at a time
  std::mutex mutex_;      // guards job_, chunks_ and error_, and orders joining and leaving
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t chunks_ = 0;
  std::exception_ptr error_;         // the first exception of the current job
  std::atomic<bool> failed_{false};  // error_ is set
  std::atomic<int64_t> pending_{0};  // chunks not yet finished
  std::atomic<int64_t> inside_{0};   // workers that joined the current job and have not left
  std::atomic<int64_t> next_{0};
  std::atomic<uint64_t> generation_{0};
};

// Calls fn(begin, end) on disjoint chunks covering [0, n). Work is split only when each chunk
// gets at least min_work (cost_per_item per item), so small calls stay on the calling thread
// without asking how many threads there are. Each item is processed by exactly one call in a
// fixed order, so results never depend on the number of threads.
template <typename Fn>
void parallel_for(int64_t n, double cost_per_item, double min_work, Fn&& fn) {
  const double by_work = cost_per_item * static_cast<double>(n) / std::max(min_work, 1.0);
  const int64_t most = by_work >= static_cast<double>(n) ? n : static_cast<int64_t>(by_work);
  const int64_t chunks = most >= 2 ? std::min(num_threads(), most) : 1;
  if (chunks == 1) {
    fn(int64_t{0}, n);
    return;
  }
  ThreadPool::instance().run(chunks, [&](int64_t c) { fn(c * n / chunks, (c + 1) * n / chunks); });
}

}  // namespace darnax
