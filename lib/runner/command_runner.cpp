#include "runner/command_runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "runner/metric_line.hpp"
#include "runtime/scheduler.hpp"
#include "support/log.hpp"
#include "support/repeating_timer.hpp"

extern char** environ;

namespace vapor::runner {
namespace asio = boost::asio;

/// How often job logs are checked against jobs.log_max_bytes.
constexpr std::chrono::seconds log_check_period{2};
/// The fd the trainer reads VAPOR_METRICS_FD from.
constexpr int metrics_fd_number = 3;
/// After the trainer exits, how long its pipe may stay open (a child of its that left the
/// process group) before the job ends without the rest.
constexpr std::chrono::seconds pipe_drain_limit{2};

struct TrimTimer {
  TrimTimer(const asio::any_io_executor& executor, std::function<void()> tick)
      : timer(executor, std::move(tick)) {}
  RepeatingTimer timer;
};

struct CommandRunner::Process {
  explicit Process(const asio::any_io_executor& executor)
      : exit_watch(executor), metrics(executor), kill_timer(executor) {}
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    if (log_fd >= 0) ::close(log_fd);
  }

  core::JobId id = 0;
  pid_t pid = -1;  ///< also its process group
  asio::posix::stream_descriptor exit_watch;  ///< a pidfd: readable once the process exits
  asio::posix::stream_descriptor metrics;     ///< the read end of VAPOR_METRICS_FD
  asio::steady_timer kill_timer;              ///< SIGKILL after stop_grace
  std::chrono::milliseconds stop_grace{10'000};
  int log_fd = -1;
  std::uint64_t punched = 0;  ///< bytes at the head of the log already given back
  std::array<char, 64 * 1024> buffer{};
  std::string pending;        ///< a line not yet ended
  bool discarding = false;    ///< skipping the rest of an over-long line
  std::uint64_t line_number = 0;
  bool terminating = false;
  bool exited = false;             ///< reaped; `status` holds how it ended
  int status = 0;
  bool metrics_done = false;       ///< the pipe reached its end (or we stopped waiting for it)
  bool finished = false;
};

namespace {

/// Writes all of `text` to `fd` (the job log), ignoring failures: a full disk must not stop the
/// job, and the log is best effort by design.
void append(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(written));
  }
}

/// Moves `fd` to a number of 10 or more (close-on-exec), so that the child's dup2 onto 0-3
/// never meets one of its own sources.
int high_fd(int fd) {
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return moved;
}

std::string signal_name(int number) {
  const char* abbrev = ::sigabbrev_np(number);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(number);
}

/// The child's environment: vapord's, the spec's `env`, then the VAPOR_* variables.
std::vector<std::string> child_environment(const runtime::Job& job) {
  std::vector<std::pair<std::string, std::string>> variables;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto equals = text.find('=');
    if (equals == std::string_view::npos || text.starts_with("VAPOR_")) continue;
    variables.emplace_back(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  const auto set = [&variables](const std::string& name, const std::string& value) {
    for (auto& [existing, old] : variables) {
      if (existing == name) {
        old = value;
        return;
      }
    }
    variables.emplace_back(name, value);
  };
  for (const auto& [name, value] : job.spec.command.env) set(name, value);
  set("VAPOR_JOB_ID", std::to_string(job.id));
  set("VAPOR_JOB_NAME", job.spec.name);
  set("VAPOR_ATTEMPT", std::to_string(job.attempt));
  set("VAPOR_METRICS_FD", std::to_string(metrics_fd_number));
  std::vector<std::string> out;
  out.reserve(variables.size());
  for (const auto& [name, value] : variables) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& text : strings) out.push_back(text.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

CommandRunner::CommandRunner(const asio::any_io_executor& executor, runtime::Scheduler& scheduler,
                             CommandRunnerOptions options, CommandRunnerHooks hooks)
    : executor_(executor),
      scheduler_(scheduler),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      trim_timer_(std::make_unique<TrimTimer>(executor, [this] { trim_logs(); })) {}

CommandRunner::~CommandRunner() {
  trim_timer_->timer.cancel();
  for (auto& [id, process] : processes_) {
    ::kill(-process->pid, SIGKILL);
    ::waitpid(process->pid, nullptr, 0);
    process->exited = true;
  }
}

std::filesystem::path CommandRunner::log_path(core::JobId id) const {
  return options_.log_dir / ("job-" + std::to_string(id) + ".log");
}

void CommandRunner::on_state_changed(const core::JobStateChanged& event) {
  if (event.to == core::JobState::running) {
    const runtime::Job* job = scheduler_.find(event.job_id);
    if (job != nullptr && job->spec.kind == core::JobKind::command && !stopping_) {
      // Not from inside the scheduler's own call: spawning may fail, and failing the job is a
      // call back into it.
      asio::post(executor_, [this, id = event.job_id] { spawn(id); });
    }
    return;
  }
  if (event.from == core::JobState::running) {
    if (auto found = processes_.find(event.job_id); found != processes_.end()) {
      end_group(*found->second);
    }
  }
}

void CommandRunner::spawn(core::JobId id) {
  const runtime::Job* job = scheduler_.find(id);
  if (job == nullptr || job->state != core::JobState::running || processes_.contains(id) ||
      stopping_) {
    return;
  }
  const auto failed = [this, id](const std::string& why) {
    log::error("job " + std::to_string(id) + ": cannot start its command: " + why);
    scheduler_.finish(id, {core::JobState::failed, "spawn_failed", std::nullopt, {}});
    if (hooks_.rearm) hooks_.rearm();
  };

  std::error_code made;
  std::filesystem::create_directories(options_.log_dir, made);
  const std::string log_file = log_path(id).string();
  const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return failed("cannot open its log " + log_file + ": " + std::strerror(errno));
  auto process = std::make_shared<Process>(executor_);
  process->id = id;
  process->log_fd = log_fd;
  process->stop_grace = job->spec.command.stop_grace;

  // Everything the child needs, prepared before fork(): after it, only async-signal-safe calls.
  std::vector<std::string> argv_strings = job->spec.command.argv;
  std::vector<std::string> env_strings = child_environment(*job);
  std::vector<char*> argv = pointers(argv_strings);
  std::vector<char*> envp = pointers(env_strings);
  const std::string cwd = job->spec.command.cwd;
  const std::string exec_failed =
      "vapord: cannot run " + argv_strings.front() + " (in " + (cwd.empty() ? "." : cwd) +
      "): exec failed; check the command and its PATH\n";
  const std::string chdir_failed = "vapord: cannot enter the job's cwd " + cwd + "\n";
  std::string argv_text;
  for (const auto& argument : argv_strings) argv_text += " " + argument;
  append(log_fd, "vapord: attempt " + std::to_string(job->attempt) + ":" + argv_text + "\n");

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return failed(std::string("pipe: ") + std::strerror(errno));
  const int read_end = pipe_fds[0];
  const int write_end = high_fd(pipe_fds[1]);
  const int null_fd = high_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int out_fd = high_fd(::fcntl(log_fd, F_DUPFD_CLOEXEC, 0));
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // vapord died before the line above
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &default_action, nullptr);
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::dup2(write_end, metrics_fd_number);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      append(2, chdir_failed);
      ::_exit(127);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    append(2, exec_failed);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(write_end);
  ::close(null_fd);
  ::close(out_fd);
  if (pid < 0) {
    ::close(read_end);
    return failed(std::string("fork: ") + std::strerror(fork_errno));
  }
  ::setpgid(pid, pid);  // also from this side, so the group exists before any kill(-pid)
  process->pid = pid;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(read_end);
    return failed(std::string("pidfd_open: ") + std::strerror(errno));
  }
  process->exit_watch.assign(pidfd);
  process->metrics.assign(read_end);
  process->metrics.native_non_blocking(true);
  processes_.emplace(id, process);
  log::notice("job " + std::to_string(id) + " " + job->spec.name + ": started pid " +
              std::to_string(pid) + ":" + argv_text);
  process->exit_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                                 [this, process](const boost::system::error_code& ec) {
                                   if (ec == asio::error::operation_aborted) return;
                                   on_exit(process);
                                 });
  read_metrics(process);
  if (processes_.size() == 1) trim_timer_->timer.start(log_check_period);
}

void CommandRunner::read_metrics(const std::shared_ptr<Process>& process) {
  process->metrics.async_read_some(
      asio::buffer(process->buffer),
      [this, process](const boost::system::error_code& ec, std::size_t size) {
        if (process->metrics_done) return;
        if (ec) {
          // End of file (every writer is gone), or a read error: a last line without a
          // newline still counts.
          if (!process->pending.empty() && !process->discarding) {
            take_line(*process, process->pending);
          }
          process->pending.clear();
          process->metrics_done = true;
          if (hooks_.rearm) hooks_.rearm();
          maybe_finish(process);
          return;
        }
        std::string_view data(process->buffer.data(), size);
        while (!data.empty()) {
          const auto newline = data.find('\n');
          const std::string_view piece = data.substr(0, newline);
          if (process->discarding) {
            if (newline != std::string_view::npos) process->discarding = false;
          } else if (process->pending.size() + piece.size() > options_.max_line_bytes) {
            ++process->line_number;
            reject(*process, "longer than " + std::to_string(options_.max_line_bytes) +
                                 " bytes (jobs.max_metric_line_bytes); skipped");
            process->pending.clear();
            process->discarding = newline == std::string_view::npos;
          } else {
            process->pending.append(piece);
            if (newline != std::string_view::npos) {
              take_line(*process, process->pending);
              process->pending.clear();
            }
          }
          if (newline == std::string_view::npos) break;
          data.remove_prefix(newline + 1);
        }
        if (hooks_.rearm) hooks_.rearm();  // the stall deadline moved
        read_metrics(process);
      });
}

void CommandRunner::take_line(Process& process, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  ++process.line_number;
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // a blank line
  const runtime::Job* job = scheduler_.find(process.id);
  if (job == nullptr || job->state != core::JobState::running) return;  // stopping: not counted
  auto point = parse_metric_line(line);
  if (!point) return reject(process, point.error().message);
  if (auto recorded = scheduler_.record_point(process.id, *point); !recorded) {
    reject(process, recorded.error().message);
  }
}

void CommandRunner::reject(Process& process, const std::string& why) {
  if (hooks_.metric_line_rejected) hooks_.metric_line_rejected(process.id);
  append(process.log_fd, "vapord: metric line " + std::to_string(process.line_number) +
                             " rejected: " + why + "\n");
}

void CommandRunner::end_group(Process& process) {
  if (process.terminating || process.exited) return;
  process.terminating = true;
  ::kill(-process.pid, SIGTERM);
  append(process.log_fd, "vapord: SIGTERM sent to the process group; SIGKILL in " +
                             std::to_string(process.stop_grace.count()) + " ms\n");
  process.kill_timer.expires_after(process.stop_grace);
  process.kill_timer.async_wait([&process](const boost::system::error_code& ec) {
    if (ec || process.exited) return;
    ::kill(-process.pid, SIGKILL);
    append(process.log_fd, "vapord: SIGKILL sent to the process group (stop_grace passed)\n");
  });
}

void CommandRunner::on_exit(const std::shared_ptr<Process>& process) {
  const pid_t reaped = ::waitpid(process->pid, &process->status, WNOHANG);
  if (reaped == 0) {  // not yet (cannot happen with a pidfd, but never block the loop on it)
    process->exit_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                                   [this, process](const boost::system::error_code& ec) {
                                     if (!ec) on_exit(process);
                                   });
    return;
  }
  process->exited = true;
  ::kill(-process->pid, SIGKILL);  // whatever it left behind in its group
  // Its last points are still in the pipe: the reader takes them up to the end of file, which
  // comes once every holder of the write end is gone; a holder that left the group gets
  // pipe_drain_limit.
  process->kill_timer.cancel();
  process->kill_timer.expires_after(pipe_drain_limit);
  process->kill_timer.async_wait([this, process](const boost::system::error_code& ec) {
    if (ec || process->finished) return;
    process->metrics_done = true;
    boost::system::error_code ignored;
    process->metrics.cancel(ignored);
    append(process->log_fd, "vapord: the metrics pipe stayed open after the process exited; "
                            "lines after this were not read\n");
    maybe_finish(process);
  });
  maybe_finish(process);
}

void CommandRunner::maybe_finish(const std::shared_ptr<Process>& process) {
  if (!process->exited || !process->metrics_done || process->finished) return;
  process->finished = true;
  process->kill_timer.cancel();
  const int status = process->status;
  runtime::ExternalEnd end;
  std::string how;
  if (WIFEXITED(status)) {
    end.exit_code = WEXITSTATUS(status);
    end.to = *end.exit_code == 0 ? core::JobState::complete : core::JobState::failed;
    if (*end.exit_code != 0) end.reason = core::reason::exit_code;
    how = "exited with code " + std::to_string(*end.exit_code);
  } else {
    end.to = core::JobState::failed;
    end.reason = core::reason::signal;
    end.signal = signal_name(WTERMSIG(status));
    how = "was killed by " + end.signal;
  }
  append(process->log_fd, "vapord: the process " + how + "\n");
  trim_log(*process);  // what it wrote since the last check
  log::info("job " + std::to_string(process->id) + ": pid " + std::to_string(process->pid) + " " +
            how);
  processes_.erase(process->id);
  if (processes_.empty()) trim_timer_->timer.cancel();
  if (!stopping_) {
    scheduler_.finish(process->id, end);
    if (hooks_.rearm) hooks_.rearm();
  } else if (processes_.empty() && all_stopped_) {
    auto done = std::move(all_stopped_);
    all_stopped_ = nullptr;
    done();
  }
}

void CommandRunner::stop_all(std::function<void()> done) {
  stopping_ = true;
  if (processes_.empty()) {
    done();
    return;
  }
  all_stopped_ = std::move(done);
  for (auto& [id, process] : processes_) end_group(*process);
}

void CommandRunner::trim_logs() {
  for (auto& [id, process] : processes_) trim_log(*process);
}

void CommandRunner::trim_log(Process& process) const {
  struct stat info {};
  if (::fstat(process.log_fd, &info) != 0) return;
  const auto size = static_cast<std::uint64_t>(info.st_size);
  if (size <= options_.log_max_bytes) return;
  // The newest log_max_bytes stay; the blocks before them go back to the file system (the
  // file keeps its length, with a hole at its head that reads as zeros).
  const std::uint64_t cut = (size - options_.log_max_bytes) & ~std::uint64_t{4095};
  if (cut <= process.punched) return;
  if (::fallocate(process.log_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  static_cast<off_t>(process.punched),
                  static_cast<off_t>(cut - process.punched)) == 0) {
    process.punched = cut;
  }
}

}  // namespace vapor::runner
