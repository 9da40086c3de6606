#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace vapor::app {

/// Calls `on_change` when the queue file is written, replaced (an editor's rename) or created,
/// using inotify on the file's folder; bursts of events within `settle` are merged into one
/// call. Event-loop thread only.
class QueueWatcher {
 public:
  QueueWatcher(const boost::asio::any_io_executor& executor, std::filesystem::path file,
               std::function<void()> on_change,
               std::chrono::milliseconds settle = std::chrono::milliseconds(200));
  ~QueueWatcher();
  QueueWatcher(const QueueWatcher&) = delete;
  QueueWatcher& operator=(const QueueWatcher&) = delete;

  /// Starts watching; an error (no inotify, missing folder) is returned as a message.
  [[nodiscard]] std::string start();
  void cancel();

 private:
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t bytes);

  boost::asio::posix::stream_descriptor stream_;
  boost::asio::steady_timer settle_timer_;
  std::filesystem::path file_;
  std::function<void()> on_change_;
  std::chrono::milliseconds settle_;
  alignas(8) char buffer_[4096];
};

}  // namespace vapor::app
