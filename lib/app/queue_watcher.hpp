#pragma once

#include <sys/inotify.h>
#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace vapor::app {

/// Calls `on_change` when the queue file is written, replaced (an editor's rename), created,
/// deleted, or when a symlink anywhere on its way changes (a file linked into /etc/vapor, a
/// `current` folder link swapped to a new release, a Kubernetes ConfigMap's `..data` swap):
/// inotify on the folder of the file and of every symlink met while resolving its path. Bursts
/// of events within `settle` are merged into one check; a gone file is logged once. Event-loop
/// thread only.
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
  /// What the path names now: which file (through every symlink), its size and mtime.
  struct Fingerprint {
    bool exists = false;
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec modified{};
  };
  struct Watch {
    int descriptor;
    std::filesystem::path folder;
  };

  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t bytes);
  /// What an event means: nothing for us, a reason to look again (the file may have been
  /// redirected), or a change of one of the entries on the file's way.
  enum class Relevance { none, look, changed };
  [[nodiscard]] Relevance relevance(const inotify_event& event, const char* name) const;
  void settle();
  void on_settled();
  /// Watches the folders the path passes through now, and forgets those it no longer does.
  /// Returns the first folder that could not be watched, as a message.
  std::string rewatch();
  [[nodiscard]] Fingerprint fingerprint() const;

  boost::asio::posix::stream_descriptor stream_;
  boost::asio::steady_timer settle_timer_;
  std::filesystem::path file_;
  std::function<void()> on_change_;
  std::chrono::milliseconds settle_;
  std::vector<Watch> watches_;
  std::vector<std::string> names_;  ///< entries on the path's way: the file, each link met
  bool changed_ = false;            ///< an entry on the way changed since the last check
  Fingerprint last_;
  alignas(8) char buffer_[4096];
};

}  // namespace vapor::app
