#include "app/queue_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/error.hpp>

#include "support/log.hpp"

namespace vapor::app {

QueueWatcher::QueueWatcher(const boost::asio::any_io_executor& executor,
                           std::filesystem::path file, std::function<void()> on_change,
                           std::chrono::milliseconds settle)
    : stream_(executor),
      settle_timer_(executor),
      file_(std::move(file)),
      on_change_(std::move(on_change)),
      settle_(settle) {}

QueueWatcher::~QueueWatcher() { cancel(); }

std::string QueueWatcher::start() {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return std::string("inotify_init1: ") + std::strerror(errno);
  auto folder = file_.parent_path();
  if (folder.empty()) folder = ".";
  // Only complete files: a closed write or a rename into place (how editors and config
  // managers save). A bare create or a delete would reload a half-written or missing file.
  if (inotify_add_watch(fd, folder.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    const std::string message =
        "cannot watch " + folder.string() + ": " + std::strerror(errno);
    ::close(fd);
    return message;
  }
  stream_.assign(fd);
  do_read();
  return {};
}

void QueueWatcher::cancel() {
  boost::system::error_code ignored;
  settle_timer_.cancel();
  stream_.close(ignored);
}

void QueueWatcher::do_read() {
  stream_.async_read_some(
      boost::asio::buffer(buffer_),
      [this](const boost::system::error_code& ec, std::size_t bytes) { on_read(ec, bytes); });
}

void QueueWatcher::on_read(const boost::system::error_code& ec, std::size_t bytes) {
  if (ec == boost::asio::error::operation_aborted) return;  // closed on shutdown
  if (ec) {
    log::warning("queue watcher stopped (" + ec.message() +
                 "); changes will be picked up on SIGHUP only");
    return;
  }
  const auto name = file_.filename().string();
  bool relevant = false;
  for (std::size_t offset = 0; offset + sizeof(inotify_event) <= bytes;) {
    inotify_event header{};
    std::memcpy(&header, buffer_ + offset, sizeof header);
    const char* event_name = buffer_ + offset + sizeof(inotify_event);
    if (header.len > 0 && name == event_name) relevant = true;
    if ((header.mask & IN_Q_OVERFLOW) != 0) relevant = true;  // events lost: check anyway
    if ((header.mask & IN_IGNORED) != 0) {
      log::warning("queue folder " + file_.parent_path().string() +
                   " is no longer watched; changes will be picked up on SIGHUP only");
      return;
    }
    offset += sizeof(inotify_event) + header.len;
  }
  if (relevant) {
    // Merge a burst (write, rename, chmod) into one reload once the file has settled.
    settle_timer_.expires_after(settle_);
    settle_timer_.async_wait([this](const boost::system::error_code& wait_ec) {
      if (!wait_ec) on_change_();
    });
  }
  do_read();
}

}  // namespace vapor::app
