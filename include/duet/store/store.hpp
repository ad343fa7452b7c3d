#pragma once
// The file store shared by both ports: one directory, reached only through a directory fd with
// openat-family calls, so a name can never lead outside it. Client names follow the README rule and
// are checked before any system call sees them; duet's own bookkeeping uses names starting with
// '.'.
#include <sys/stat.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "duet/core/fd.hpp"
#include "duet/core/sha256.hpp"
#include "duet/event/helpers.hpp"
#include "duet/store/names.hpp"
#include "duet/store/store_meta.hpp"
#include "duet/store/tar_stream.hpp"
#include "duet/store/write_pipe.hpp"

namespace duet {

class RecordWriter;
class RecordReader;
class Store;
class StoreIndex;

// The store directory is gone (removed, renamed, unmounted): README "Limits", answered with 503.
inline constexpr int kStoreGone = -ESTALE;

// What must still hold at the moment a change is published (compare-and-swap): checked by the
// store right before the rename or unlink, in the same loop step, so no other request of either
// port can come in between. A failure is -ECANCELED and nothing changes.
struct Precondition {
    enum class Kind : std::uint8_t { None, MustMatch, MustExist, MustNotExist };
    Kind kind = Kind::None;
    Digest etag{};  // MustMatch: the file's current SHA-256
};

// A precondition as bytes for the reload hand-over (upload_handover.cpp): kind, then for
// MustMatch the 32-byte ETag digest. decode_precondition: false for anything else.
std::string encode_precondition(const Precondition& p);
bool decode_precondition(std::string_view bytes, Precondition& out);

struct FileInfo {
    std::string name;
    std::uint64_t size = 0;
    Digest sha256{};
    std::int64_t mtime = 0;  // unix seconds
    bool readable = true;    // false: listed with its size, but duet may not read it (no digest)
};

// A change of the store whose file-system half runs on a helper (README "Limits"): done once the
// books (index, counts, digest records) are updated on the loop; rc 0 or -errno, and for a publish
// the new file's info and whether the name is new.
struct StoreOp : DiskWait {
    enum class Kind : std::uint8_t {
        Publish,
        Delete,
        TempFile,
        PartialCreate,
        MakeFolder,
        DeleteFolder,
        Move,
        Snapshot,
        // Not a change: a big folder's page made on a helper for an HTTP request (http_page.cpp),
        // which parks on it like on a change.
        Render
    };
    Kind kind = Kind::Publish;
    FileInfo info;
    bool created = false;
    Fd fd;                 // TempFile: the new upload's file, until adopted
    std::string tmp_name;  // TempFile: its temporary name, when O_TMPFILE is unsupported
    // Publish: -ENOTDIR (a file where a folder should be: this path) or -EISDIR (a folder has
    // the name: the name).
    std::string conflict;
    // Snapshot: what a folder holds, for its tar.
    std::vector<TarEntry> entries;
    // Render: the text made.
    std::string text;
};
using StoreOpRef = std::shared_ptr<StoreOp>;

// One upload in progress: an unnamed temporary file in the store plus its running SHA-256.
// Destroying it without commit() stores nothing.
class Upload {
  public:
    Upload() = default;
    Upload(Upload&&) noexcept;
    Upload& operator=(Upload&&) noexcept;
    ~Upload();

    bool active() const { return fd_.valid() || pipe_.active(); }
    std::uint64_t size() const { return size_; }  // bytes taken, written or still in the pipe
    // Appends bytes: they are written and hashed on a helper (write_pipe.hpp). 0 or -errno
    // (-ENOSPC/-EDQUOT/-EFBIG mean "disk full"), which may be the error of earlier bytes.
    int write(const void* data, std::size_t len);
    // Enough bytes wait for the helper: stop reading until the store's wake (README "Uploads
    // never hold the loop").
    bool backlogged() { return pipe_.backlogged(); }
    // Every byte written, then the file fsynced, on a helper; the wait's rc is the first error.
    // Then commit_async with set_synced().
    std::shared_ptr<DiskWait> sync_later();
    // Waits for the pipe (bounded: a few buffers) and takes its hash: 0 or the first write error.
    int settle_now();
    // Publishes under `name`: fsync, record digest, rename over the name, fsync the directory.
    // -EBADMSG if `expected` is given and differs (nothing stored);
    // -ECANCELED if `pre` does not hold right before the rename (nothing stored).
    int commit(std::string_view name, const Digest* expected, const Precondition& pre,
               FileInfo& out, bool& created);
    // The same publish with its file-system half (data fsync unless set_synced(), the link and
    // rename, the directory fsync unless defer_dir_sync()) on a helper (store_publish.cpp). The
    // checks run now, on the loop: -EINPROGRESS when it cannot start yet (the name's lookup is
    // on a helper, or another change of the same name by duet is in flight): nothing happened,
    // park and call again. Another -errno: refused, as commit() would. 0: started, `op` says
    // when it is done; the upload is then inactive (the helper owns its file).
    // `then` runs on the loop right after the books, before anyone is woken.
    int commit_async(std::string_view name, const Digest* expected, const Precondition& pre,
                     StoreOpRef& op, std::function<void(StoreOp&)> then = {});
    void abort();

    // Reload hand-over (upload_handover.cpp): the temporary file goes into the record's fd table
    // with the bytes written and the hash state; this object is then inactive and nothing is
    // unlinked. resume() takes it back in the next image; false (with r.error()) when the
    // record does not describe a temporary file of this store.
    void hand_over(RecordWriter& w);
    bool resume(Store& store, RecordReader& r);
    // Publish with the disk waits off the loop (README "Limits"): a helper fsyncs fd() first, then
    // set_synced() makes commit() skip that fsync; with defer_dir_sync() commit() leaves the
    // directory's fsync to the caller (a helper again), to be done before the answer.
    int fd() const { return fd_.get(); }  // -1 while the pipe holds the file
    void set_synced() { data_synced_ = true; }
    void defer_dir_sync() { defer_dir_sync_ = true; }

  private:
    friend class Store;
    friend class PartialStore;  // a partial upload becomes an Upload to publish, and back
    void reset_state();
    // The pipe's hash and errors become this upload's once it is idle: -EINPROGRESS until then
    // (the store's wake comes when it is).
    int settle();
    void open_pipe();

    class Store* store_ = nullptr;
    Fd fd_;
    Sha256 sha_;
    std::uint64_t size_ = 0;
    std::string tmp_name_;  // the file's temporary name in the store, if it has one
    bool data_synced_ = false;
    bool defer_dir_sync_ = false;
    WritePipe pipe_;
};

class Store {
  public:
    // Creates the directory if missing, opens it, removes stale temporary files left by a crash,
    // and counts files/bytes. false with a one-line reason on failure.
    bool open(const std::string& dir, std::string& err);
    // What --check does: the directory exists or can be created, and is a writable directory.
    // Changes nothing inside it (a running duet may be using it).
    static bool check(const std::string& dir, std::string& err);

    // 0 or -errno. -ENOENT also for entries that are not regular files (symlinks, dirs, fifos).
    int stat(std::string_view name, FileInfo& out);
    int open_read(std::string_view name, Fd& fd, FileInfo& out);
    // -EACCES when duet may not read the file (README: unreadable is 403 everywhere, delete too);
    // -ECANCELED when `pre` does not hold right before the unlink.
    int remove(std::string_view name, const Precondition& pre = {});
    // The same with the unlink on a helper; -EINPROGRESS, other -errno and 0 as commit_async.
    int remove_async(std::string_view name, const Precondition& pre, StoreOpRef& op);
    // MKCOL / MKDIR (README "Folders"): makes the folder `path` on a helper, durable (it and its
    // parent fsynced) before the op is done. The op's rc: 0; -EEXIST when something is there
    // already; -ENOENT when its parent is missing; -ENOTDIR when a folder above is a file.
    int make_folder_async(std::string_view path, StoreOpRef& op);
    // DELETE of a folder (store_trash.cpp, README "Folders"): on a helper, the folder is renamed
    // into the trash (".duet-trash", atomic and durable), so it is gone for everyone at once and
    // a crash never leaves half of it; then the trash is emptied in bounded steps in the
    // background. The op's rc: 0; -ENOENT no such folder; -ENOTDIR a file is there.
    int remove_folder_async(std::string_view path, StoreOpRef& op);
    // MOVE (store_move.cpp, README "Folders"): renames the file or folder `src` to `dst` in one
    // atomic step. `pre` must hold for `src` (checked on the loop, as for a delete);
    // `no_replace` refuses an existing `dst` (RENAME_NOREPLACE: -ECANCELED, no race). A folder
    // replaced at `dst` goes to the trash. The op's rc: 0 (`created`: dst was new); -ENOENT no
    // `src`, or `dst`'s folder is missing (`conflict` then says "parent"); -ECANCELED; -EINVAL
    // a folder into itself; -ENOTDIR a folder on the way to `dst` is a file.
    int move_async(std::string_view src, std::string_view dst, const Precondition& pre,
                   bool no_replace, StoreOpRef& op);
    // A folder's tar (tar_stream.hpp): everything below `folder` ("" the top one) read from the
    // disk on a helper, folders and the regular files duet serves, as the directory reads found
    // them. The op's rc: 0 and `entries`; -ENOENT no such folder.
    int snapshot_async(const std::string& folder, StoreOpRef& op);
    // Empties the trash in the background, a bounded number of entries per helper job (at start:
    // what a crash or a stop left there).
    void empty_trash();
    static constexpr const char* kTrashDir = ".duet-trash";
    // Set by the server: runs `work` on a helper, then `done` on the loop (and wakes parked
    // connections). Without it (unit tests) both run at once, in the caller.
    using Offload = std::function<void(std::function<void()> work, std::function<void()> done)>;
    void set_offload(Offload f) { offload_ = std::move(f); }
    // Both hooks on `helpers`: cold lookups and the disk half of publishes and deletes run
    // there, and `wake` runs parked requests again when one is done.
    void use_helpers(Helpers& helpers, std::function<void()> wake);
    void run_offloaded(std::function<void()> work, std::function<void()> done);
    // Where uploads' pipes run (use_helpers; in place without it).
    const WritePipe::Runner& pipe_runner() const { return pipe_runner_; }
    std::size_t mutations_in_flight() const { return mutating_.size(); }
    // A publish or delete of `name` by duet is between its check and its books.
    bool mutating(std::string_view name) const {
        return !mutating_.empty() && mutating_.find(name) != mutating_.end();
    }
    // 0 when `pre` holds for `name` now, -ECANCELED when not, or another -errno.
    int check_precondition(std::string_view name, const Precondition& pre);
    // Size and free space of the store's file system, in bytes (statvfs).
    int space(std::uint64_t& total, std::uint64_t& avail) const;
    // Regular files with valid names, sorted by name.
    int list(std::vector<FileInfo>& out);
    bool exists(std::string_view name);

    int begin_upload(Upload& up);
    // The same with the file created on a helper: 0 and `op` (done: adopt_upload() gives the
    // file to `up`, or says why there is none), or kStoreGone / -errno at once.
    int begin_upload_async(StoreOpRef& op);
    int adopt_upload(StoreOp& op, Upload& up);
    // A reload that hands uploads over must not sweep their named temporaries away.
    void keep_temps_at_open() { keep_temps_ = true; }

    std::uint64_t file_count() const { return files_; }
    std::uint64_t byte_count() const { return bytes_; }
    int dirfd() const { return dir_.get(); }
    const std::string& path() const { return path_; }

    // With an index (the server), open() leaves sweeping and counting to the index's build on
    // the helper threads, and digests missing from the records are computed there instead of
    // inline (describe() then says -EINPROGRESS). Unit tests use the store without one.
    void set_index(StoreIndex* index) { index_ = index; }
    DigestMeta& meta() { return meta_; }

    // README "Disk I/O off the loop" (store_lookup.cpp). With a cold-lookup hook (the server),
    // names are looked up only in the kernel's caches (openat2 RESOLVE_CACHED); a lookup that
    // would wait for the disk calls `cold(name)` once (a helper then runs lookup_blocking() and
    // hands the result to looked_up()) and the caller gets -EINPROGRESS: it parks and runs again
    // when woken, and that run finds the helper's result (or the now warm cache). Without a hook
    // (unit tests, tools) lookups simply block.
    void set_cold_lookup(std::function<void(const std::string&)> cold) { cold_ = std::move(cold); }
    // Tests (DUET_TEST_COLD_LOOKUPS): every lookup not answered by a helper's result acts cold.
    void force_cold_lookups() { force_cold_ = true; }
    // What fstatat(AT_SYMLINK_NOFOLLOW) says of `name`, from the caches only: -EAGAIN when the
    // lookup would need the disk (or cold lookups are forced), else 0 or -errno.
    int stat_cached(std::string_view name, struct stat& st);
    // The helper's lookup, today's blocking one: look (fstatat) before opening, then open.
    static int lookup_blocking(int dirfd, const char* name, Fd& fd, struct stat& st);
    // A helper's result for `name`, kept for the rest of this loop iteration unless duet itself
    // changed the name since the lookup was asked for (then it is stale: dropped).
    void looked_up(const std::string& name, int rc, Fd fd, const struct stat& st);
    void look_up_later(Helpers& helpers, const std::function<void()>& wake,
                       const std::string& name);
    // End of a loop iteration: the woken requests have run, the results are dropped.
    void forget_lookups() {
        if (!looked_.empty()) looked_.clear();
    }
    std::size_t cold_in_flight() const { return cold_pending_.size(); }

    // README "The store can go away". usable() checks the link count of the open directory and
    // that the path still names it; a failed check, or mark_gone() from the index's watch, makes
    // every write, listing and lookup kStoreGone until reopen() finds a directory at the path.
    bool usable();
    bool gone() const { return !gone_reason_.empty(); }
    const std::string& gone_reason() const { return gone_reason_; }
    void mark_gone(std::string reason);
    bool reopen(std::string& err);

  private:
    friend class Upload;
    friend struct StoreTestAccess;  // test/test_store.cpp: forces the fallback paths
    // Digest of an open regular file: from its recorded metadata when it still matches, else
    // computed once from the bytes and recorded.
    int digest_of(std::string_view name, int fd, const struct stat& st, Digest& out);
    int open_regular(std::string_view name, Fd& fd, struct stat& st);
    int lookup_cached(const char* name, Fd& fd, struct stat& st);
    // duet itself changes `name` (publish, delete): a lookup result from before is stale.
    void changed(std::string_view name);
    int describe(std::string_view name, Fd& fd, FileInfo& out);
    static int open_temp_at(int dir, bool force_named, unsigned seq, Fd& fd, std::string& tmp_name);
    void sweep_and_count();

    Fd dir_;
    std::string path_;
    std::string gone_reason_;
    StoreIndex* index_ = nullptr;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    std::uint64_t files_ = 0, bytes_ = 0;
    unsigned tmp_seq_ = 0;
    DigestMeta meta_;
    bool force_named_tmp_ = false;  // act as if O_TMPFILE were unsupported (tests)
    bool keep_temps_ = false;
    bool force_cold_ = false;
    bool cached_lookups_ = true;  // false where openat2 RESOLVE_CACHED is refused: lookups block
    // Cold lookups: names a helper is looking up (false once duet changed the name meanwhile),
    // and helpers' results for this loop iteration.
    struct Looked {
        int rc = 0;
        Fd fd;
        struct stat st {};
    };
    std::function<void(const std::string&)> cold_;
    Offload offload_;
    WritePipe::Runner pipe_runner_;
    bool emptying_trash_ = false, trash_again_ = false;
    unsigned trash_seq_ = 0;
    std::set<std::string, std::less<>> mutating_;
    std::map<std::string, bool, std::less<>> cold_pending_;
    std::map<std::string, Looked, std::less<>> looked_;
};

}  // namespace duet
