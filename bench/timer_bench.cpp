// Timer strategy benchmark: how the scheduler wakes jobs. Vapor keeps a deadline heap inside the
// scheduler and one Asio timer set to the earliest deadline; the peer gives every job its own
// Asio steady_timer. Both simulate every step and run for the same wall time on one thread;
// reported as steps per CPU-second and the ratio.
//
//   timer_bench [jobs] [seconds]     (defaults: 1000 jobs, 3 s, 1 ms step interval)

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/simulator.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/scheduler_driver.hpp"

namespace {

using namespace vapor;
namespace asio = boost::asio;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

core::JobSpec job_spec(int index) {
  core::JobSpec spec;
  spec.name = "job" + std::to_string(index);
  spec.epochs = 1000;
  spec.steps_per_epoch = 1000;
  spec.step_interval = std::chrono::milliseconds(1);
  spec.seed = core::seed_from_name(spec.name);
  return spec;
}

struct Measurement {
  double steps = 0;
  double cpu = 0;
};

/// The peer: one steady_timer per job, re-armed after every step.
Measurement timer_per_job(int jobs, std::chrono::seconds duration) {
  asio::io_context ioc(1);
  struct JobTimer {
    asio::steady_timer timer;
    core::JobSpec spec;
    std::uint64_t step = 0;
  };
  std::vector<std::unique_ptr<JobTimer>> timers;
  double sink = 0;
  std::uint64_t steps = 0;
  const auto end = std::chrono::steady_clock::now() + duration;
  std::function<void(JobTimer&)> arm = [&](JobTimer& job) {
    job.timer.expires_at(job.timer.expiry() + job.spec.step_interval);
    job.timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec || std::chrono::steady_clock::now() >= end) return;
      sink += core::simulate_step(job.spec, ++job.step).loss;
      ++steps;
      arm(job);
    });
  };
  for (int i = 0; i < jobs; ++i) {
    timers.push_back(std::make_unique<JobTimer>(JobTimer{asio::steady_timer(ioc), job_spec(i), 0}));
    timers.back()->timer.expires_after(std::chrono::milliseconds(0));
    arm(*timers.back());
  }
  const double cpu_start = cpu_seconds();
  ioc.run();
  if (sink == 42.0) std::puts("");  // keep the simulation from being optimised away
  return {static_cast<double>(steps), cpu_seconds() - cpu_start};
}

/// Vapor: the scheduler's deadline heap behind one timer (SchedulerDriver).
Measurement deadline_heap(int jobs, std::chrono::seconds duration) {
  struct Counter final : core::JobEventListener {
    void on_step(const core::StepRecorded&) override { ++steps; }
    void on_state_changed(const core::JobStateChanged&) override {}
    std::uint64_t steps = 0;
  } counter;
  asio::io_context ioc(1);
  runtime::SystemClock clock;
  runtime::Scheduler scheduler({static_cast<std::size_t>(jobs), std::chrono::hours(1),
                                static_cast<std::size_t>(jobs)},
                               clock);
  scheduler.add_listener(counter);
  for (int i = 0; i < jobs; ++i) scheduler.add_job(i + 1, job_spec(i), clock.wall_now()).value();
  runtime::SchedulerDriver driver(ioc.get_executor(), scheduler);
  driver.rearm();
  asio::steady_timer stop(ioc, duration);
  stop.async_wait([&](const boost::system::error_code&) { driver.cancel(); });
  const double cpu_start = cpu_seconds();
  ioc.run();
  return {static_cast<double>(counter.steps), cpu_seconds() - cpu_start};
}

}  // namespace

int main(int argc, char** argv) {
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 1000;
  const std::chrono::seconds duration(argc > 2 ? std::atoi(argv[2]) : 3);
  const auto peer = timer_per_job(jobs, duration);
  const auto ours = deadline_heap(jobs, duration);
  const double peer_rate = peer.steps / peer.cpu;
  const double our_rate = ours.steps / ours.cpu;
  std::printf("scheduler wake-ups, %d jobs at a 1 ms interval, %lld s each\n", jobs,
              static_cast<long long>(duration.count()));
  std::printf("  one Asio timer per job   %10.0f steps in %5.2f CPU s  %10.0f steps/CPU-s\n",
              peer.steps, peer.cpu, peer_rate);
  std::printf("  deadline heap + 1 timer  %10.0f steps in %5.2f CPU s  %10.0f steps/CPU-s\n",
              ours.steps, ours.cpu, our_rate);
  std::printf("  ratio heap / per-job     %10.2f\n", our_rate / peer_rate);
  return 0;
}
