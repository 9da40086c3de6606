// The queue watcher on a real folder with real inotify: how editors, config managers, symlinks
// and Kubernetes ConfigMaps change a queue file, and a deleted one.

#include "app/queue_watcher.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <boost/asio/io_context.hpp>

#include "support/daemon_process.hpp"

namespace vapor::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;
using testing::read_file;
using testing::write_file;

class QueueWatcherTest : public ::testing::Test {
 protected:
  /// Watches `path`; each call of the callback records what the path reads then ("" if gone).
  void watch(const fs::path& path) {
    watched_ = path;
    watcher_.emplace(ioc_.get_executor(), path, [this] {
      std::error_code error;
      seen_.push_back(fs::exists(watched_, error) ? read_file(watched_) : std::string{});
    }, 20ms);
    ASSERT_EQ(watcher_->start(), "");
  }

  /// Runs the loop long enough for events to arrive and settle.
  void settle() {
    ioc_.restart();
    ioc_.run_for(300ms);
  }

  boost::asio::io_context ioc_;
  TempDir dir_;
  fs::path watched_;
  std::optional<QueueWatcher> watcher_;
  std::vector<std::string> seen_;
};

TEST_F(QueueWatcherTest, AWriteAndARenameIntoPlaceAreEachOneChange) {
  write_file(dir_ / "jobs.yaml", "one");
  watch(dir_ / "jobs.yaml");
  write_file(dir_ / "jobs.yaml", "two");  // same size, same inode, maybe the same mtime tick
  settle();
  write_file(dir_ / "jobs.yaml.tmp", "three");
  fs::rename(dir_ / "jobs.yaml.tmp", dir_ / "jobs.yaml");
  settle();
  write_file(dir_ / "other.yaml", "not ours");
  settle();
  EXPECT_EQ(seen_, (std::vector<std::string>{"two", "three"}));
}

TEST_F(QueueWatcherTest, AFileBehindASymlinkIsWatchedWhereItLives) {
  fs::create_directories(dir_ / "etc" / "vapor");
  fs::create_directories(dir_ / "srv" / "queues");
  write_file(dir_ / "srv" / "queues" / "real.yaml", "one");
  fs::create_symlink("../../srv/queues/real.yaml", dir_ / "etc" / "vapor" / "jobs.yaml");
  watch(dir_ / "etc" / "vapor" / "jobs.yaml");

  write_file(dir_ / "srv" / "queues" / "real.yaml", "edited where it lives");
  settle();
  write_file(dir_ / "srv" / "queues" / "next.yaml", "next");
  fs::remove(dir_ / "etc" / "vapor" / "jobs.yaml");
  fs::create_symlink(dir_ / "srv" / "queues" / "next.yaml", dir_ / "etc" / "vapor" / "jobs.yaml");
  settle();
  write_file(dir_ / "srv" / "queues" / "next.yaml", "the new target edited");
  settle();
  write_file(dir_ / "srv" / "queues" / "real.yaml", "the old target is no longer ours");
  settle();
  EXPECT_EQ(seen_, (std::vector<std::string>{"edited where it lives", "next",
                                             "the new target edited"}));
}

TEST_F(QueueWatcherTest, AFolderLinkSwappedOnTheWayIsSeen) {
  // /etc/vapor/jobs.yaml -> /srv/app/current/jobs.yaml, and `current` moves to a new release.
  fs::create_directories(dir_ / "etc" / "vapor");
  for (const char* release : {"release-1", "release-2"}) {
    fs::create_directories(dir_ / "srv" / "app" / release);
    write_file(dir_ / "srv" / "app" / release / "jobs.yaml", release);
  }
  fs::create_directory_symlink("release-1", dir_ / "srv" / "app" / "current");
  fs::create_symlink(dir_ / "srv" / "app" / "current" / "jobs.yaml",
                     dir_ / "etc" / "vapor" / "jobs.yaml");
  watch(dir_ / "etc" / "vapor" / "jobs.yaml");

  fs::create_directory_symlink("release-2", dir_ / "srv" / "app" / "current.new");
  fs::rename(dir_ / "srv" / "app" / "current.new", dir_ / "srv" / "app" / "current");
  settle();
  write_file(dir_ / "srv" / "app" / "release-2" / "jobs.yaml", "release-2 edited");
  settle();
  write_file(dir_ / "srv" / "app" / "release-1" / "jobs.yaml", "no longer ours");
  settle();
  EXPECT_EQ(seen_, (std::vector<std::string>{"release-2", "release-2 edited"}));
}

TEST_F(QueueWatcherTest, AConfigMapUpdateIsSeen) {
  // How the kubelet lays out and updates a mounted ConfigMap: jobs.yaml -> ..data/jobs.yaml,
  // ..data -> ..<timestamp>/; an update writes a new timestamped folder, renames a new
  // ..data link over the old one, and deletes the old folder.
  const fs::path mount = dir_ / "config";
  fs::create_directories(mount / "..2026_12_01");
  write_file(mount / "..2026_12_01" / "jobs.yaml", "version 1");
  fs::create_directory_symlink("..2026_12_01", mount / "..data");
  fs::create_symlink("..data/jobs.yaml", mount / "jobs.yaml");
  watch(mount / "jobs.yaml");

  for (const std::string version : {"2", "3"}) {
    const fs::path folder = mount / ("..2026_12_0" + version);
    fs::create_directories(folder);
    write_file(folder / "jobs.yaml", "version " + version);
    fs::create_directory_symlink(folder.filename(), mount / "..data_tmp");
    const fs::path old = fs::canonical(mount / "..data");
    fs::rename(mount / "..data_tmp", mount / "..data");
    fs::remove_all(old);
    settle();
  }
  EXPECT_EQ(seen_, (std::vector<std::string>{"version 2", "version 3"}));
}

TEST_F(QueueWatcherTest, ADeletedFileIsReportedOnceAndItsReturnSeen) {
  write_file(dir_ / "jobs.yaml", "one");
  watch(dir_ / "jobs.yaml");
  fs::remove(dir_ / "jobs.yaml");
  settle();
  write_file(dir_ / "unrelated", "x");
  settle();
  write_file(dir_ / "jobs.yaml", "back");
  settle();
  EXPECT_EQ(seen_, (std::vector<std::string>{"", "back"}))
      << "one call when the file goes (a failed reload), one when it is back";
}

}  // namespace
}  // namespace vapor::app
