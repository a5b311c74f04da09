// RulesWatcher: tells its owner when any watched rules file may have changed.
//
// It watches directories, not files: editors save by writing a temporary file
// and renaming it over the old one, and Kubernetes config maps swap a symlink
// (`..data`), and both replace the inode a file watch would hold. inotify on
// each file's directory (and on the directory a symlinked file resolves to)
// reports those; a slow poll that compares content hashes backs it up for
// file systems where inotify says nothing (network mounts, some overlays).
// Bursts of events are debounced into one callback.
//
// The callback runs on the watcher's own thread and must not block for long.
// Thread-safety: construction and destruction from one thread; the callback
// may run at any time between them. The destructor stops and joins the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
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

 private:
  RulesWatcher(Options options, std::function<void()> on_change);
  void run();
  bool add_watches();                        // (re)adds watches; false if none could be added
  bool poll_changed();                       // true if any file's content hash changed

  Options options_;
  std::function<void()> on_change_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;                         // eventfd: wakes run() to stop
  std::map<int, std::string> watched_dirs_;  // watch descriptor -> directory
  std::map<std::string, std::string> hashes_;  // file -> sha256 of its content ("" if unreadable)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace switchboard::detail
