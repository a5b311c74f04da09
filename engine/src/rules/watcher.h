// RulesWatcher: tells its owner when any watched rules file may have changed.
//
// Editors save by writing a temporary file and renaming it over the old one,
// and Kubernetes config maps swap a symlink (`..data`): both replace the inode
// a file watch holds. So inotify watches each file's directory (and the
// directory a symlinked file resolves to) for entries created, deleted and
// renamed, and each file itself for writes, attribute changes and its removal.
// A directory event re-arms the file watches on whatever the paths now name,
// and counts as a change only when a file's identity (device and inode, or
// its absence) changed. Writes to the directory's other files (a SQLite
// ledger's -wal beside the rules) are not watched, so they never wake the
// thread. A slow poll that compares content hashes backs it up for file
// systems where inotify says nothing (network mounts, some overlays). Bursts
// of events are debounced into one callback.
//
// The callback runs on the watcher's own thread and must not block for long.
// Thread-safety: construction and destruction from one thread; the callback
// may run at any time between them. The destructor stops and joins the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "switchboard/status.h"

namespace switchboard::detail {

class RulesWatcher {
 public:
  struct Options {
    std::vector<std::string> files;                      // rules files to watch
    std::chrono::milliseconds debounce{150};             // quiet time before the callback
    std::chrono::milliseconds poll_interval{2000};       // content-hash poll period
  };

  static Result<std::unique_ptr<RulesWatcher>> start(Options options, std::function<void()> on_change);
  ~RulesWatcher();
  RulesWatcher(const RulesWatcher&) = delete;
  RulesWatcher& operator=(const RulesWatcher&) = delete;

  // The inotify events the thread has read so far (each woke it, or came
  // with one that did). Any thread may ask.
  std::uint64_t events() const { return events_.load(std::memory_order_relaxed); }

 private:
  // What a path names: its device and inode (symlinks followed), {0, 0} when nothing.
  using Identity = std::pair<std::uint64_t, std::uint64_t>;

  RulesWatcher(Options options, std::function<void()> on_change);
  void run();
  // (Re)adds the directory watches and arms a watch on each file as its path
  // now resolves, dropping the watches of files no longer there; true when a
  // file's identity differs from the last call's.
  bool add_watches();
  bool poll_changed();                       // true if any file's content hash changed

  Options options_;
  std::function<void()> on_change_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;                         // eventfd: wakes run() to stop
  std::map<int, std::string> watched_dirs_;  // watch descriptor -> directory
  std::set<int> watched_files_;              // the files' watch descriptors
  std::map<std::string, Identity> identities_;  // file -> what it named at the last add_watches()
  std::map<std::string, std::string> hashes_;  // file -> sha256 of its content ("" if unreadable)
  std::atomic<std::uint64_t> events_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace switchboard::detail
