#include "rules/watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/file_text.h"
#include "util/sha256.h"
#include "util/thread_name.h"

namespace switchboard::detail {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A directory: its entries created, deleted or renamed, or itself gone. Not
// writes to the files in it: those of the rules files come by their own watches.
constexpr uint32_t kDirEvents =
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// A rules file: written in place, its attributes changed (touch, chmod, its
// link count when a save renames another file over it), or it gone.
constexpr uint32_t kFileEvents = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

std::string content_hash(const std::string& path) {
  auto text = read_text_file(path, "");  // never blocks on a FIFO
  return text.ok() ? sha256_hex(*text) : "";
}

}  // namespace

RulesWatcher::RulesWatcher(Options options, std::function<void()> on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)) {}

Result<std::unique_ptr<RulesWatcher>> RulesWatcher::start(Options options,
                                                          std::function<void()> on_change) {
  std::unique_ptr<RulesWatcher> w(new RulesWatcher(std::move(options), std::move(on_change)));
  w->inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  w->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->wake_fd_ < 0) return Status::io_error(std::string("eventfd: ") + std::strerror(errno));
  // Without inotify (fd limit, unsupported file system) the poll still works.
  if (w->inotify_fd_ >= 0) w->add_watches();
  w->poll_changed();  // the baseline
  w->thread_ = std::thread([raw = w.get()] {
    detail::name_this_thread("sb-rules-watch");
    raw->run();
  });
  return w;
}

RulesWatcher::~RulesWatcher() {
  stop_.store(true);
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool RulesWatcher::add_watches() {
  std::set<std::string> dirs;
  for (const std::string& file : options_.files) {
    const fs::path p(file);
    dirs.insert(p.parent_path().empty() ? "." : p.parent_path().string());
    std::error_code ec;
    const fs::path real = fs::canonical(p, ec);  // where a symlinked file really lives
    if (!ec) dirs.insert(real.parent_path().string());
  }
  // Watches on directories that no longer hold a rules file stay until the
  // directory goes away (a swapped-out config map version): harmless.
  for (const std::string& dir : dirs) {
    const int wd = inotify_add_watch(inotify_fd_, dir.c_str(), kDirEvents);
    if (wd >= 0) watched_dirs_[wd] = dir;
  }
  // The files as their paths resolve now (a watch follows a symlink); adding
  // a watch an inode already has returns the same descriptor.
  std::set<int> armed;
  bool moved = false;
  for (const std::string& file : options_.files) {
    const int wd = inotify_add_watch(inotify_fd_, file.c_str(), kFileEvents);
    if (wd >= 0) armed.insert(wd);
    struct stat st {};
    const Identity now = ::stat(file.c_str(), &st) == 0
                             ? Identity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)}
                             : Identity{0, 0};
    auto [it, inserted] = identities_.emplace(file, now);
    if (!inserted && it->second != now) {
      it->second = now;
      moved = true;
    }
  }
  // A replaced file's old inode (renamed aside as a backup, say) says nothing more.
  for (const int wd : watched_files_) {
    if (!armed.contains(wd) && !watched_dirs_.contains(wd)) inotify_rm_watch(inotify_fd_, wd);
  }
  watched_files_ = std::move(armed);
  return moved;
}

bool RulesWatcher::poll_changed() {
  bool changed = false;
  for (const std::string& file : options_.files) {
    std::string hash = content_hash(file);
    auto it = hashes_.find(file);
    if (it == hashes_.end()) {
      hashes_.emplace(file, std::move(hash));
    } else if (it->second != hash) {
      it->second = std::move(hash);
      changed = true;
    }
  }
  return changed;
}

void RulesWatcher::run() {
  bool pending = false;
  Clock::time_point fire_at{};
  Clock::time_point next_poll = Clock::now() + options_.poll_interval;
  alignas(struct inotify_event) char buf[8192];
  while (!stop_.load()) {
    const Clock::time_point now = Clock::now();
    Clock::time_point wake = next_poll;
    if (pending && fire_at < wake) wake = fire_at;
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const int nfds = inotify_fd_ >= 0 ? 2 : 1;
    const int ready = ::poll(fds, nfds, wait > 0 ? static_cast<int>(wait) : 0);
    if (stop_.load()) return;
    if (ready > 0 && nfds == 2 && (fds[1].revents & POLLIN)) {
      bool changed = false;  // a file event: written, attributes, gone
      bool rearm = false;    // a directory event: a file may name another inode now
      ssize_t n;
      while ((n = read(inotify_fd_, buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + n;) {
          const auto* ev = reinterpret_cast<const struct inotify_event*>(p);
          events_.fetch_add(1, std::memory_order_relaxed);
          if (ev->mask & IN_Q_OVERFLOW) {  // events were lost: assume the worst
            changed = rearm = true;
          } else if (ev->mask & IN_IGNORED) {  // the watch is gone (its inode or directory was)
            watched_dirs_.erase(ev->wd);
            watched_files_.erase(ev->wd);
            rearm = true;
          } else if (watched_files_.contains(ev->wd)) {
            changed = true;
            rearm = rearm || (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) != 0;
          } else {
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) watched_dirs_.erase(ev->wd);
            if (ev->mask & IN_MOVE_SELF) inotify_rm_watch(inotify_fd_, ev->wd);  // its path names another now
            rearm = true;
          }
          p += sizeof(struct inotify_event) + ev->len;
        }
      }
      if (rearm && add_watches()) changed = true;
      if (changed) {
        pending = true;
        fire_at = Clock::now() + options_.debounce;
      }
    }
    if (Clock::now() >= next_poll) {
      next_poll = Clock::now() + options_.poll_interval;
      if (poll_changed() && !pending) {
        pending = true;
        fire_at = Clock::now();
      }
    }
    if (pending && Clock::now() >= fire_at) {
      pending = false;
      if (inotify_fd_ >= 0) add_watches();  // a swapped symlink may point somewhere new
      poll_changed();                       // new baseline: the owner reads the files now
      on_change_();
    }
  }
}

}  // namespace switchboard::detail
