#pragma once
// The store index (SPEC §5 "The store index"): name → size, mtime, SHA-256 or "being computed",
// in memory, so that no request reads a directory or a file's bytes on the loop.
//
// - Built at start by helper threads (readdir, fstatat, the digest record) in batches that the
//   loop merges one at a time; the ready line does not wait for it.
// - Kept current by duet's own writes (Store calls published()/removed()) and by an inotify
//   watch on the store directory for everybody else's; an overflowed queue starts a rebuild.
// - Digests missing or stale are computed on the helper threads; a request that needs one asks
//   digest_for(), parks on -EINPROGRESS, and that file's job moves to the front of the queue.
// - Listings (GET /files, LIST) are rendered from the index in slices of about 1 ms on the loop
//   into one shared, immutable body per index version, which every client then reads at its own
//   pace: 200 clients listing 10,000 files cost one render, not 200.
// - Store loss: the watch reports the directory removed, renamed or unmounted; a second watch on
//   the parent directory reopens the store when a directory appears at the path again.
#include <sys/stat.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "duet/fd.hpp"
#include "duet/loop.hpp"
#include "duet/sha256.hpp"

namespace duet {

class Server;

class StoreIndex : public Handler {
  public:
    enum class State : std::uint8_t { Ready, Pending, Failed };
    struct Entry {
        std::uint64_t size = 0;
        std::int64_t mtime_ns = 0;
        Digest sha256{};
        State state = State::Pending;
        std::int8_t error = 0;  // errno of a failed digest
    };

    explicit StoreIndex(Server& srv);
    ~StoreIndex() override;
    // Arms the watches (on `inherited`, the previous image's inotify fd, when there is one) and
    // starts the first build. Stale temporary files are swept by it.
    void start(bool sweep_temps = true, int inherited = -1);
    int inotify_fd() const { return inotify_.get(); }
    // True once the first (or latest) build has merged every directory entry.
    bool built() const { return !building_; }
    std::size_t pending() const { return pending_; }

    // ---- hooks for Store (loop thread) ----
    // The digest of `name`, whose fresh status is `st`: 0 and `out`; -EINPROGRESS when it is
    // being computed (park and retry; this file goes first); another -errno if hashing failed.
    int digest_for(std::string_view name, const struct stat& st, Digest& out);
    // Neither the index nor the file's record has this version's digest: hash it, first in line.
    void need(std::string_view name, const struct stat& st);
    void published(std::string_view name, const struct stat& st, const Digest& d);
    void removed(std::string_view name);
    // fsync of the store directory on a helper, nobody waiting for it.
    void sync_dir_later();

    // ---- listings ----
    // The whole GET /files body, or the LIST lines (count in `count`); null while the index is
    // not ready for a listing yet (the caller parks and is woken).
    std::shared_ptr<const std::string> json_listing();
    std::shared_ptr<const std::string> text_listing(std::uint64_t& count);
    // One slice of listing work within `budget_ns`; true while more remains.
    bool run_slice(std::int64_t budget_ns);
    bool has_work() const { return render_ != nullptr; }

    std::uint64_t files() const { return entries_.size(); }
    std::uint64_t bytes() const { return bytes_; }

    void on_event(std::uint32_t events) override;  // inotify

  private:
    struct ScanState;
    struct Render;
    struct HashWork;

    void rebuild(bool sweep);
    void scan_step(std::shared_ptr<ScanState> st);
    void hash(const std::string& name, bool urgent);
    void refresh(const std::string& name);
    void set_entry(const std::string& name, const Entry& e);
    void erase(const std::string& name);
    bool listing_ready() const;
    void want_render();
    void add_watches();
    void store_lost(const char* why);
    void try_reopen();
    void changed();

    Server& srv_;
    std::map<std::string, Entry, std::less<>> entries_;
    std::uint64_t bytes_ = 0;
    std::size_t pending_ = 0;
    std::uint64_t version_ = 1;
    unsigned gen_ = 0;  // bumped by each rebuild: late results of an older one are dropped
    bool building_ = true;
    // Hash jobs in flight, by name, with the job key (to hurry it).
    // Hashing runs one file at a time in slices of 64 MiB (one helper stays free for fsyncs and
    // read-aheads): a file someone waits for (urgent_) goes next, setting a long hash aside
    // (paused_) until it is done; then the index's Pending entries in name order (hash_cursor_).
    // No per-file job is queued ahead, so 100,000 files dropped in cost no queue memory.
    void pump_hashing();
    void hash_done(const std::shared_ptr<HashWork>& w);
    bool hashing(const std::string& name) const;
    std::shared_ptr<HashWork> current_, paused_;
    bool current_urgent_ = false;
    std::deque<std::string> urgent_;
    std::string hash_cursor_;
    std::shared_ptr<Fd> dir_;  // one duplicate of the store fd per build, shared by its jobs

    std::unique_ptr<Render> render_;
    std::shared_ptr<const std::string> json_, text_;
    std::uint64_t listing_version_ = 0, text_count_ = 0;
    int stale_renders_ = 0;

    Fd inotify_;
    int store_wd_ = -1, parent_wd_ = -1;
    std::string base_;  // the store directory's name in its parent
};

}  // namespace duet
