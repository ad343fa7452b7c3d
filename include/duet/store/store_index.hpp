#pragma once
// The store index (README "The store index"): name → size, mtime, SHA-256 or "being computed",
// in memory, so that no request reads a directory or a file's bytes on the loop.
//
// - Built at start by helper threads (readdir, fstatat, the digest record) in batches that the
//   loop merges one at a time; the ready line does not wait for it.
// - Kept current by duet's own writes (Store calls published()/removed()) and by an inotify
//   watch on the store directory for everybody else's; an overflowed queue starts a rebuild.
// - Digests missing or stale are computed on the helper threads; a request that needs one asks
//   digest_for(), parks on -EINPROGRESS, and that file's job moves to the front of the queue.
// - Listings (GET /files, LIST) of a small store (up to kSharedListing bytes of JSON) are rendered
//   from the index in slices of about 1 ms on the loop into one shared, immutable body per index
//   version, which every client then reads at its own pace: 200 clients listing 10,000 files cost
//   one render, not 200. A bigger store's listing is never held whole: each client gets a
//   ListingStream (store_listing.cpp), rendered from the index a buffer at a time as it reads.
//   Either way a listing shows the store as it was when it started (its Content-Length or
//   "OK COUNT" is a promise): a stream keeps the old state of every entry changed after it
//   started and before it got there.
// - Store loss: the watch reports the directory removed, renamed or unmounted; a second watch on
//   the parent directory reopens the store when a directory appears at the path again.
#include <sys/stat.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "duet/core/body_source.hpp"
#include "duet/core/fd.hpp"
#include "duet/core/logger.hpp"
#include "duet/core/sha256.hpp"
#include "duet/event/helpers.hpp"
#include "duet/event/loop.hpp"
#include "duet/store/change_feed.hpp"

namespace duet {

class Store;
class ListingStream;

// A file's modification time in ns: with its size, how the index tells a version from the next.
inline std::int64_t mtime_ns(const struct stat& st) {
    return std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

class StoreIndex : public Handler {
  public:
    enum class State : std::uint8_t { Ready, Pending, Failed };
    struct Entry {
        std::uint64_t size = 0;
        std::int64_t mtime_ns = 0;
        Digest sha256{};
        State state = State::Pending;
        std::int8_t error = 0;  // errno of a failed digest
        bool dir = false;       // a folder (README "Folders"): no size or digest, always Ready
    };
    // What a listing shows (README "Folders"): the entries of the folder `folder` ("" the top,
    // else "a/b"), or with `recursive` every file below it, named relative to it.
    struct Scope {
        std::string folder;
        bool recursive = false;
        std::string prefix() const { return folder.empty() ? std::string() : folder + "/"; }
    };
    // Whether `e` describes the version of the file whose status is `st`.
    static bool same_file(const Entry& e, const struct stat& st) {
        return e.size == std::uint64_t(st.st_size) && e.mtime_ns == mtime_ns(st);
    }

    // What the index needs from its owner, and nothing more: the loop (for its inotify fd),
    // the helpers that read directories and hash files, the store it indexes, where to log,
    // `wake` to run parked requests again when something they wait for changed, and
    // `streams_on_hold`, true while a reload writes the rests of streamed listings ahead (a new
    // stream then waits for the next image).
    struct Hooks {
        Loop& loop;
        Helpers& helpers;
        Store& store;
        Logger& log;
        std::function<void()> wake;
        std::function<bool()> streams_on_hold;
    };
    explicit StoreIndex(Hooks hooks);
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
    // The index holds `name`: its last look (a scan, an inotify refresh, duet's own publish)
    // found a regular file there. The store then opens it without looking first.
    bool holds(std::string_view name) const {
        auto it = entries_.find(name);
        return it != entries_.end() && !it->second.dir;
    }
    // The index holds a folder at `path` ("" is the top folder, always there).
    bool holds_folder(std::string_view path) const {
        if (path.empty()) return true;
        auto it = entries_.find(path);
        return it != entries_.end() && it->second.dir;
    }
    // Why an upload to `path` cannot land, as far as the index knows (a 409 before any byte is
    // read, README "Folders"): "" when nothing is in the way, else the path in the way, with
    // `is_folder` true when it is `path` itself, a folder ("a/b is a folder"), false when it is a
    // folder on the way that is a file ("a is a file").
    std::string upload_conflict(std::string_view path, bool& is_folder) const;
    // Neither the index nor the file's record has this version's digest: hash it, first in line.
    void need(std::string_view name, const struct stat& st);
    // A publish into folders that may be new: the index holds them at once.
    void published(std::string_view name, const struct stat& st, const Digest& d);
    void folder_made(std::string_view path, const struct stat& st);
    // duet deleted (or moved away) the folder at `path`: it and everything below leave at once.
    void folder_removed(std::string_view path) { folder_gone(std::string(path), true); }
    // duet renamed `src` to `dst` (a file keeps its entry; a folder is read again at `dst`).
    void moved(std::string_view src, std::string_view dst, bool folder);
    void removed(std::string_view name);
    // fsync of the store directory on a helper, nobody waiting for it.
    void sync_dir_later();

    // ---- listings (store_listing.cpp) ----
    // Above this many bytes of JSON a listing is streamed to each client instead of shared.
    static constexpr std::uint64_t kSharedListing = 2u << 20;
    // GET /files (`json`) or LIST: either the whole shared body in `body`, or a stream of its own
    // in `stream`; `count` entries, `length` bytes (without LIST's "OK" line). false while the
    // index is not ready for a listing yet, or a stream is due while a reload writes the others'
    // rests ahead (the caller parks and is woken, or carried to the next image).
    bool listing(bool json, std::shared_ptr<const std::string>& body,
                 std::unique_ptr<ListingStream>& stream, std::uint64_t& count,
                 std::uint64_t& length) {
        return listing(Scope{}, json, body, stream, count, length);
    }
    // The same for any scope: the top folder's listing may be shared, every other one is a
    // stream of its own.
    bool listing(const Scope& scope, bool json, std::shared_ptr<const std::string>& body,
                 std::unique_ptr<ListingStream>& stream, std::uint64_t& count,
                 std::uint64_t& length);
    // One slice of listing work within `budget_ns`; true while more remains.
    bool run_slice(std::int64_t budget_ns);
    bool has_work() const { return render_ != nullptr || walk_due_; }
    // Every few seconds (the server's timer): the folders that could not be watched are read
    // again, a few at a time on a helper, and the index set to what they hold (README "Folders").
    void rescan_unwatched();

    std::uint64_t files() const { return entries_.size() - folders_held_; }
    // Entries seen in the store that are not served (README "File names"): each is logged once.
    std::uint64_t skipped() const { return skipped_.size() + skipped_unlogged_; }
    std::uint64_t bytes() const { return bytes_; }

    // ---- changes, for GET /events (store_events.cpp) ----
    // What the index saw happen, entry by entry, as events (README "The page").
    ChangeFeed& feed() { return feed_; }
    // One entry as a listing shows it, as JSON, under `name` (events give the full path).
    static std::string entry_json(std::string_view name, const Entry& e);
    // Whether a folder's listing shows `e` (a file whose digest is not known yet is not shown).
    static bool shown(const Entry& e);
    // The entries a listing of `folder` ("" the top) shows, by name, at most `max` (the page).
    std::vector<std::pair<std::string, Entry>> folder_entries(const std::string& folder,
                                                              std::size_t max) const;
    // How many entries that listing shows in all.
    std::uint64_t folder_count(const std::string& folder) const {
        return totals(Scope{folder, false}).count;
    }

    void on_event(std::uint32_t events) override;  // inotify

  private:
    friend class ListingStream;
    std::shared_ptr<const std::string> json_listing();
    std::shared_ptr<const std::string> text_listing(std::uint64_t& count);
    // The listings' totals, kept with every change for every folder: its own entries (names
    // relative to it) and every file below it (full paths: a listing from folder F takes the
    // length of F's prefix off each), so that a listing promises its length before it starts.
    struct Totals {
        std::uint64_t count = 0, json = 0, text = 0;
    };
    struct FolderTotals {
        Totals direct, below;
    };
    void account(std::string_view name, const Entry& e, int sign);
    Totals totals(const Scope& scope) const;
    // The next entry at or after `it` that `scope` lists (by name; whether it is listed at all
    // is listed_in()'s call), skipping whole subfolders of a folder listing.
    using EntryMap = std::map<std::string, Entry, std::less<>>;
    EntryMap::const_iterator next_in_scope(EntryMap::const_iterator it, const std::string& prefix,
                                           bool recursive) const;
    // Every stream that has not sent `name` yet keeps its state from before this change.
    void before_change(const std::string& name);
    struct ScanState;
    // A shared listing being rendered on the loop, a slice at a time.
    struct Render {
        std::string json = "[";
        std::string text;
        std::string cursor;  // last name rendered
        bool started = false;
        std::uint64_t count = 0;
        std::uint64_t version = 0;
    };
    struct HashWork;

    void rebuild(bool sweep);
    // Reads the folders `folders` and everything below them (a folder that appeared).
    void scan_folders(std::deque<std::string> folders, bool full, bool sweep);
    void scan_step(std::shared_ptr<ScanState> st);
    // A folder seen by inotify: watched, then read (so nothing put in it meanwhile is missed).
    void folder_appeared(const std::string& path);
    // A folder removed or moved away: it and everything below it leave the index.
    void folder_gone(const std::string& path, bool moved);
    // Watches the folder `path`, open as `fd`; false over the system's watch limit (the folder is
    // then rescanned every few seconds instead).
    bool watch_folder(const std::string& path, int fd);
    struct Rescan;
    // One folder's entries as a helper read them, set against the index's.
    void reconcile(const std::string& folder, const Rescan& r, std::size_t at);
    void hash(const std::string& name, bool urgent);
    void refresh(const std::string& name);
    // refresh() with what a lookup said: `rc` 0 and `st`, or -errno.
    void refresh_with(const std::string& name, int rc, const struct stat& st);
    // The lookup would wait for the disk: a helper does it (store_watch.cpp).
    void refresh_later(const std::string& name);
    void set_entry(const std::string& name, const Entry& e);
    void moved_entry(const std::string& from, const std::string& to, bool folder);
    // An entry changed from `old` to `now` (either null: it came or went): an event, unless the
    // change is part of a larger one that makes its own (a build, a move).
    void note_change(const std::string& name, const Entry* old, const Entry* now);
    void note_move(const std::string& from, const std::string& to);
    // Why an entry is not served ("" when it is; `st` null: judge the name only).
    static std::string skip_reason(std::string_view name, const struct stat* st);
    // An entry `name` that the index will not serve, and why: logged the first time.
    void skip(const std::string& name, const std::string& why);
    void erase(const std::string& name);
    bool listing_ready() const;
    void want_render();
    void add_watches();
    void store_lost(const char* why);
    void try_reopen();
    void changed();

    Hooks hooks_;
    Store& store() const { return hooks_.store; }
    EntryMap entries_;
    std::uint64_t folders_held_ = 0;  // entries_ that are folders
    std::size_t subtree_scans_ = 0;   // folders that appeared or moved, being read
    std::map<std::string, FolderTotals, std::less<>> folders_;  // by folder path, "" the top
    // inotify watches of the folders below the top one: by watch descriptor, and back.
    std::map<int, std::string> wd_path_;
    std::map<std::string, int, std::less<>> path_wd_;
    bool watch_limit_logged_ = false;
    // Folders over the watch limit: rescanned by rescan_unwatched(), a few per round.
    std::set<std::string, std::less<>> unwatched_;
    std::string rescan_cursor_;
    bool rescanning_ = false;
    std::size_t max_watches_ = ~std::size_t(0);  // DUET_TEST_MAX_WATCHES (tests)
    // Names skipped and logged, up to kMaxSkippedKept; past it they are counted only.
    static constexpr std::size_t kMaxSkippedKept = 4096;
    std::set<std::string, std::less<>> skipped_;
    std::uint64_t skipped_unlogged_ = 0;
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
    // The walk for the next Pending entry is bounded per call; one that found none within its
    // bound goes on in the next loop step (run_slice), else hashing would stop there for good.
    bool walk_due_ = false;
    std::shared_ptr<Fd> dir_;  // one duplicate of the store fd per build, shared by its jobs

    std::vector<ListingStream*> streams_;
    ChangeFeed feed_;
    bool quiet_ = false;  // a move under way: it makes one event of its own

    std::unique_ptr<Render> render_;
    std::shared_ptr<const std::string> json_, text_;
    std::uint64_t listing_version_ = 0, text_count_ = 0;
    int stale_renders_ = 0;

    Fd inotify_;
    int store_wd_ = -1, parent_wd_ = -1;
    std::string base_;  // the store directory's name in its parent
};

// One client's listing of a big store, rendered from the index as the client reads: the store as
// it was when the listing started. Names already sent are behind the cursor; an entry ahead of it
// that changes keeps its old state here (so an upload during the listing is not in it, a file
// deleted during it still is), and a rebuilt index leaves the stream with a copy of the rest.
class ListingStream final : public BodySource {
  public:
    ListingStream(StoreIndex& index, bool json, StoreIndex::Scope scope = {});
    ~ListingStream() override;
    std::uint64_t count() const { return count_; }
    std::uint64_t length() const { return length_; }
    std::size_t fill(char* p, std::size_t room) override;
    bool done() const override { return finished_; }

  private:
    friend class StoreIndex;
    void before_change(const std::string& name, const StoreIndex::Entry* old);
    void detach(bool keep_rest);  // the index is rebuilt or gone

    StoreIndex* index_;
    std::string prefix_;  // the folder listed, with its '/' ("" the top)
    bool recursive_ = false;
    bool in_scope(const std::string& name) const;
    std::map<std::string, std::optional<StoreIndex::Entry>, std::less<>> kept_;
    std::string cursor_;  // the last name sent; empty before the first
    std::uint64_t count_ = 0, length_ = 0, sent_count_ = 0, sent_bytes_ = 0;
    bool json_;
    bool finished_ = false;
};

}  // namespace duet
