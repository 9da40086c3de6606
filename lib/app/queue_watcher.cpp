#include "app/queue_watcher.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <utility>

#include <boost/asio/error.hpp>

#include "support/log.hpp"

namespace vapor::app {
namespace {

namespace fs = std::filesystem;

/// Links followed at most, as the kernel's own limit for a path (ELOOP past it).
constexpr int max_symlink_hops = 40;

constexpr std::uint32_t watched_events =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR;

fs::path folder_of(const fs::path& file) {
  auto folder = file.parent_path();
  return folder.empty() ? fs::path(".") : folder;
}

}  // namespace

QueueWatcher::QueueWatcher(const boost::asio::any_io_executor& executor, fs::path file,
                           std::function<void()> on_change, std::chrono::milliseconds settle)
    : stream_(executor),
      settle_timer_(executor),
      file_(std::move(file)),
      on_change_(std::move(on_change)),
      settle_(settle) {}

QueueWatcher::~QueueWatcher() { cancel(); }

std::string QueueWatcher::start() {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return std::string("inotify_init1: ") + std::strerror(errno);
  stream_.assign(fd);
  if (auto problem = rewatch(); !problem.empty()) {
    boost::system::error_code ignored;
    stream_.close(ignored);
    watches_.clear();
    return problem;
  }
  last_ = fingerprint();
  do_read();
  return {};
}

void QueueWatcher::cancel() {
  boost::system::error_code ignored;
  settle_timer_.cancel();
  stream_.close(ignored);
}

namespace {

/// Every directory entry whose change can change what `file` names, as (folder, name): the
/// path's own last entry, each symlink met while resolving it component by component (as the
/// kernel does: a link anywhere on the way, to a file or to a folder; a relative target is read
/// from the link's folder), and the entry of the file it ends at.
std::vector<std::pair<fs::path, std::string>> entries_on_the_way(const fs::path& file) {
  std::vector<std::pair<fs::path, std::string>> entries{
      {folder_of(file), file.filename().string()}};
  std::error_code error;
  const fs::path absolute = fs::absolute(file, error);
  if (error) return entries;
  std::deque<fs::path> parts(absolute.begin(), absolute.end());  // "/", "etc", "vapor", ...
  fs::path resolved;
  int hops = 0;
  while (!parts.empty()) {
    const fs::path part = std::move(parts.front());
    parts.pop_front();
    if (part == "/") {
      resolved = part;  // the root, or an absolute link target starting again from it
    } else if (part.empty() || part == ".") {
      continue;
    } else if (part == "..") {
      resolved = resolved.parent_path();  // `resolved` holds no link: this is the real parent
    } else if (const fs::path next = resolved / part;
               hops < max_symlink_hops && fs::is_symlink(next, error)) {
      ++hops;
      entries.emplace_back(resolved, part.string());
      const fs::path target = fs::read_symlink(next, error);
      if (error) break;
      parts.insert(parts.begin(), target.begin(), target.end());
    } else {
      resolved = next;
    }
  }
  entries.emplace_back(folder_of(resolved), resolved.filename().string());
  return entries;
}

}  // namespace

std::string QueueWatcher::rewatch() {
  std::vector<fs::path> folders;
  names_.clear();
  for (auto& [folder, name] : entries_on_the_way(file_)) {
    folders.push_back(std::move(folder));
    names_.push_back(std::move(name));
  }

  std::vector<Watch> watches;
  for (const fs::path& folder : folders) {
    const int descriptor = inotify_add_watch(stream_.native_handle(), folder.c_str(),
                                             watched_events);
    if (descriptor < 0) {
      // Only the configured folder must be watchable; a link's target may be gone already.
      if (watches.empty()) return "cannot watch " + folder.string() + ": " + std::strerror(errno);
      continue;
    }
    const bool known = std::any_of(watches.begin(), watches.end(),
                                   [&](const Watch& w) { return w.descriptor == descriptor; });
    if (!known) watches.push_back({descriptor, folder});
  }
  for (const Watch& old : watches_) {
    const bool kept = std::any_of(watches.begin(), watches.end(),
                                  [&](const Watch& w) { return w.descriptor == old.descriptor; });
    if (!kept) inotify_rm_watch(stream_.native_handle(), old.descriptor);  // may be gone: fine
  }
  watches_ = std::move(watches);
  return {};
}

QueueWatcher::Fingerprint QueueWatcher::fingerprint() const {
  Fingerprint out;
  struct stat info {};
  if (::stat(file_.c_str(), &info) != 0) return out;
  out.exists = true;
  out.device = info.st_dev;
  out.inode = info.st_ino;
  out.size = info.st_size;
  out.modified = info.st_mtim;
  return out;
}

void QueueWatcher::do_read() {
  stream_.async_read_some(
      boost::asio::buffer(buffer_),
      [this](const boost::system::error_code& ec, std::size_t bytes) { on_read(ec, bytes); });
}

QueueWatcher::Relevance QueueWatcher::relevance(const inotify_event& event,
                                                const char* name) const {
  if ((event.mask & IN_Q_OVERFLOW) != 0) return Relevance::changed;  // events lost
  if ((event.mask & IN_IGNORED) != 0) return Relevance::look;  // a link's folder went away
  if (event.len == 0 || std::find(names_.begin(), names_.end(), name) == names_.end()) {
    return Relevance::none;
  }
  if ((event.mask & IN_CREATE) == 0) return Relevance::changed;  // written, moved, deleted
  // A bare create is a file still being written (its close will follow), unless it is a
  // symlink, complete at once (ln -s).
  const auto found = std::find_if(watches_.begin(), watches_.end(),
                                  [&](const Watch& w) { return w.descriptor == event.wd; });
  std::error_code error;
  return found != watches_.end() && fs::is_symlink(found->folder / name, error)
             ? Relevance::changed
             : Relevance::none;
}

void QueueWatcher::on_read(const boost::system::error_code& ec, std::size_t bytes) {
  if (ec == boost::asio::error::operation_aborted) return;  // closed on shutdown
  if (ec) {
    log::warning("queue watcher stopped (" + ec.message() +
                 "); changes will be picked up on SIGHUP only");
    return;
  }
  bool look = false;
  for (std::size_t offset = 0; offset + sizeof(inotify_event) <= bytes;) {
    inotify_event header{};
    std::memcpy(&header, buffer_ + offset, sizeof header);
    const char* event_name = buffer_ + offset + sizeof(inotify_event);
    if ((header.mask & IN_IGNORED) != 0 && !watches_.empty() &&
        header.wd == watches_.front().descriptor) {
      log::warning("queue folder " + watches_.front().folder.string() +
                   " is no longer watched; changes will be picked up on SIGHUP only");
      return;
    }
    switch (relevance(header, event_name)) {
      case Relevance::none: break;
      case Relevance::look: look = true; break;
      case Relevance::changed: look = changed_ = true; break;
    }
    offset += sizeof(inotify_event) + header.len;
  }
  if (look) settle();
  do_read();
}

void QueueWatcher::settle() {
  // Merge a burst (write, rename, chmod) into one check once the file has settled.
  settle_timer_.expires_after(settle_);
  settle_timer_.async_wait([this](const boost::system::error_code& wait_ec) {
    if (!wait_ec) on_settled();
  });
}

void QueueWatcher::on_settled() {
  if (auto problem = rewatch(); !problem.empty()) log::warning("queue watcher: " + problem);
  const Fingerprint now = fingerprint();
  if (!now.exists) {
    changed_ = false;
    if (last_.exists) {  // once, when it goes
      log::warning("queue file " + file_.string() +
                   " is gone (deleted, moved away or a dangling link): its jobs keep running "
                   "and none is removed; put the file back to load it again");
      last_ = now;
      on_change_();  // reported as a failed reload: vapor_config_last_reload_successful 0
    }
    return;
  }
  // A write to the file is a change even where its size and time did not move (a same-size
  // save within one clock tick); a folder event that redirected nothing is not.
  const bool same = last_.exists && now.device == last_.device && now.inode == last_.inode &&
                    now.size == last_.size && now.modified.tv_sec == last_.modified.tv_sec &&
                    now.modified.tv_nsec == last_.modified.tv_nsec;
  last_ = now;
  const bool written = std::exchange(changed_, false);
  if (!same || written) on_change_();
}

}  // namespace vapor::app
