#pragma once
// Partial uploads (README "Resumable uploads", §3 RESUME/PARTIAL): one store of unfinished
// uploads behind three front doors (IETF draft, tus 1.0.0, the file port). Each partial lives in
// the store's ".duet-partial" directory as ID.data (the bytes received) and ID.state (name,
// length, offset, token, digests, precondition, times and the SHA-256 state at the offset).
// The offset in ID.state is only ever advanced after the bytes before it are on disk, and a
// client is only ever told an offset from ID.state: what is announced survives kill -9.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duet/core/fd.hpp"
#include "duet/core/handover_record.hpp"
#include "duet/core/metrics.hpp"
#include "duet/core/sha256.hpp"
#include "duet/event/helpers.hpp"
#include "duet/store/store.hpp"

namespace duet {

inline constexpr std::uint64_t kUnknownLength = UINT64_MAX;

struct PartialSpec {
    std::string name;                       // the target file name (valid_name)
    std::uint64_t length = kUnknownLength;  // the whole upload's size, if known
    std::string token_hash;                 // hex SHA-256 of the creating bearer token, or empty
    bool has_expected = false;              // a digest the whole upload must have
    Digest expected{};
    // What must hold of the target name (HTTP If-Match / If-None-Match / If-Unmodified-Since,
    // file-port if=SHA256 / if=none): checked again by Upload::commit at the moment of publish.
    Precondition pre;
};

// A checkpoint of an append (README "Limits": on a helper): the data fdatasync'd, the state file
// with `offset` written, fsynced and renamed, the partial directory fsynced. done/rc are set on the
// loop, after which the partial's offset is `offset` (when rc is 0).
struct Checkpoint : DiskWait {
    Fd data;  // a duplicate: the append may end or cross a reload meanwhile
    std::uint64_t offset = 0;
    Sha256 sha;                                        // hash state at `offset`
    std::vector<std::shared_ptr<DiskWait>> followers;  // done with it, with its rc
};

struct Partial {
    std::string id;  // 32 hex digits: 128 bits from getrandom
    PartialSpec spec;
    std::uint64_t offset = 0;               // durable bytes: the only offset a client is told
    Sha256 sha;                             // hash state after `offset` bytes
    std::int64_t created = 0, touched = 0;  // unix seconds
    bool busy = false;                      // an append is in progress (one at a time)
    class PartialAppend* active = nullptr;  // that append, so HEAD can make it durable first
    bool gone = false;  // cancelled, expired, published or deactivated: every use fails
    // One checkpoint at a time per partial, so state files are renamed in order: the one on a
    // helper now, and the next (the newest request wins) started when it is done.
    std::shared_ptr<Checkpoint> syncing, queued;
    // An append that ended while its pipe still held bytes: done once they are written and its
    // last checkpoint is (PartialAppend::finish).
    std::shared_ptr<DiskWait> finishing;
    bool release_when_synced = false;  // the append ended: no longer busy once synced
};

using PartialRef = std::shared_ptr<Partial>;

class PartialStore;

// One append in progress on one partial: bytes go to ID.data and into the hash; checkpoint()
// makes them durable on a helper and advances the announced offset when that is done. The
// bytes keep arriving meanwhile (into the page cache); they count only from the next checkpoint.
// Destroying it (a cut connection) checkpoints what arrived, unless it holds an all-or-nothing
// append (tus checksum), which is rolled back instead; the partial stays busy until that
// checkpoint is done, so no other append can start from a stale offset.
class PartialAppend {
  public:
    PartialAppend() = default;
    PartialAppend(const PartialAppend&) = delete;
    PartialAppend& operator=(const PartialAppend&) = delete;
    ~PartialAppend() { end(); }

    bool active() const { return p_ != nullptr; }
    Partial& partial() const { return *p_; }
    const PartialRef& ref() const { return p_; }
    std::uint64_t offset() const { return offset_; }  // received, durable or not
    std::uint64_t start() const { return start_; }    // where this append began
    // Appends; 0 or -errno (-ENOSPC, -EDQUOT, -EFBIG: disk full; -ECANCELED: the partial was
    // cancelled meanwhile; or the error of a checkpoint that failed). Starts a checkpoint on its
    // own every few MiB unless held.
    int write(const void* data, std::size_t len);
    // Makes offset() durable on a helper: the wait is done when the partial's offset has moved
    // there (rc 0) or it failed. nullptr when there is nothing to make durable.
    std::shared_ptr<DiskWait> checkpoint();
    // A checkpoint of this append is on a helper (or queued behind one).
    bool syncing() const { return p_ && (p_->syncing || p_->queued); }
    // Stop reading until the store's wake: the helper writing the bytes is behind (the pipe is
    // full), a checkpoint is due and waits for the pipe to drain (it starts here once it has),
    // or another checkpoint's worth arrived while one is still syncing (so the bytes not yet
    // durable stay bounded: about two checkpoints).
    bool backlogged();
    // All or nothing (tus Upload-Checksum): no checkpoint until commit_held(). Before any byte.
    void hold() { hold_ = true; }
    void release_hold() { hold_ = false; }
    // The bytes of this append hash to `digest` (sha256 of start()..offset())?
    bool append_digest_is(const Digest& digest);
    void rollback();  // back to start(): data truncated, hash state restored
    // Ends the append: the last checkpoint (or a rollback when held); the partial is released
    // once that is done. The wait says when, and its result (rc < 0: the partial stays at its
    // last durable offset). Never nullptr. Bytes still in the pipe are written first, without
    // waiting on the loop: the rest of the end runs once they are (finish_later).
    std::shared_ptr<DiskWait> finish();
    void end() { finish(); }
    // Reload (partial_handover.cpp): the append goes to the next image as it stands, neither
    // checkpointed nor rolled back; PartialStore::resume_append takes it back.
    void hand_over(RecordWriter& w);

  private:
    friend class PartialStore;
    PartialStore* store_ = nullptr;
    PartialRef p_;
    Fd fd_;
    Sha256 sha_;         // whole-upload hash at offset_
    Sha256 start_sha_;   // at start_, for rollback
    Sha256 append_sha_;  // of this append's bytes only (tus checksum)
    std::uint64_t offset_ = 0, start_ = 0, since_checkpoint_ = 0;
    bool hold_ = false;
    // A write failed: offset_ is what was written; the append takes no more bytes.
    int write_error_ = 0;
    std::shared_ptr<Checkpoint> last_;  // the newest checkpoint asked for
    // The bytes and their hashes go through the pipe (write_pipe.hpp), which holds fd_ while
    // open; settled, the hashes, the offset and the file are this object's again.
    WritePipe pipe_;
    // The end of finish() once the pipe is idle; `out` is done when the last checkpoint is.
    void finish_into(const std::shared_ptr<DiskWait>& out);
    std::shared_ptr<DiskWait> finish_later();
    int settle();       // -EINPROGRESS until the pipe is idle (the store's wake comes then)
    void settle_now();  // waits for the pipe: bounded by its few buffers
    // A checkpoint failed: the bytes after the durable offset may be lost.
    int failed() const { return last_ && last_->done && last_->rc < 0 ? last_->rc : 0; }
};

// A partial upload being created on a helper (PartialStore::create_async): when done with rc 0,
// `partial` is registered and ready.
struct PartialCreateOp : StoreOp {
    PartialRef partial;
};

class PartialStore {
  public:
    static constexpr const char* kDir = ".duet-partial";
    // Bytes between automatic checkpoints (fdatasync + state rewrite) of an append, and between
    // writeback kicks that keep each checkpoint's wait short.
    static constexpr std::uint64_t kCheckpointBytes = 16u << 20;
    static constexpr std::uint64_t kWritebackBytes = 4u << 20;

    // Checkpoints run on these helpers; `synced` is called on the loop after each one (to wake
    // the connections waiting). Without helpers (unit tests) they run in place.
    void use_helpers(Helpers& helpers, std::function<void()> synced) {
        helpers_ = &helpers;
        synced_ = std::move(synced);
    }
    // Partials with a checkpoint on a helper: a reload and a stop wait for them.
    std::size_t syncing() const { return syncing_; }
    // A reload waits for the checkpoints in flight: meanwhile appends start no new ones of their
    // own (their bytes cross the reload unsynced, and the next image checkpoints them).
    void hold_checkpoints(bool on) { held_ = on; }
    // The checkpoint a busy partial waits for (its append ended), or nullptr.
    static std::shared_ptr<DiskWait> pending_sync(const Partial& p) {
        if (p.finishing && !p.finishing->done) return p.finishing;
        if (p.queued) return p.queued;
        return p.syncing;
    }
    // Opens (creates) ".duet-partial" in the store, loads every partial, drops the expired,
    // broken and already-published ones. false with a reason on failure.
    bool open(Store& store, Metrics& metrics, std::int64_t ttl_seconds, std::string& err);

    // A new partial at offset 0. nullptr and rc = -errno on failure.
    PartialRef create(const PartialSpec& spec, int& rc);
    // The same with the data file and the state file (write, fsync, rename, directory fsync)
    // made on a helper: 0 and `op` (a PartialCreateOp), or -errno at once.
    int create_async(const PartialSpec& spec, StoreOpRef& op);
    // From a file-port PUT cut short: the upload's temporary file and hash state become a
    // partial at the bytes it holds. `up` is consumed.
    PartialRef adopt(Upload& up, const PartialSpec& spec, int& rc);
    PartialRef find(std::string_view id) const;
    // The newest partial for NAME with this length (file-port RESUME; a busy one is refused
    // there, never silently started afresh).
    PartialRef find_named(std::string_view name, std::uint64_t length) const;
    // All partials (or NAME's), sorted by name then creation.
    std::vector<PartialRef> list(std::string_view name = {}) const;

    // -EBUSY while another append runs. -ECANCELED if gone.
    int begin_append(const PartialRef& p, PartialAppend& ap);
    // An append handed over by the previous image (PartialAppend::hand_over). false with
    // r.error() when the record does not match the partial this image loaded.
    bool resume_append(RecordReader& r, PartialAppend& ap);
    // Records a length learned late (IETF Upload-Complete / Upload-Length). 0 or -errno.
    int set_length(Partial& p, std::uint64_t length);
    // Records what a later request adds to the spec (a digest, a precondition), durably before
    // it counts. 0 or -errno (the old spec stands).
    int set_spec(Partial& p, const PartialSpec& spec);
    // offset == length: the same atomic publish as PUT, its rename on a helper
    // (Upload::commit_async); the store directory is left for the caller to fsync. 0: started,
    // and `op` done with rc 0 and the file's info, or -ESTALE (the precondition no longer held:
    // the partial is dropped) or another -errno (the partial is kept). Refused at once:
    // -EBADMSG (digest mismatch), -ESTALE: dropped; -EACCES (the precondition needs the digest of
    // a file duet may not read) and other -errno (disk full): kept; -EINPROGRESS: park and call
    // again.
    int publish(const PartialRef& p, StoreOpRef& op);
    // The same, waiting, directory fsync included: for a store without an offload (unit tests).
    int publish(const PartialRef& p, FileInfo& out, bool& created);
    // Cancels: the files go, any append in progress fails on its next write.
    void remove(const PartialRef& p);
    // Expires partials untouched for the TTL, looking at no more than `budget` of them; true
    // when it stopped before the end (call again soon).
    bool sweep(std::int64_t now, std::size_t budget);

    std::int64_t expires(const Partial& p) const { return p.touched + ttl_; }
    std::int64_t ttl() const { return ttl_; }
    // May a client presenting this bearer token (empty: none) touch the partial?
    static bool token_allows(const Partial& p, std::string_view token);
    static std::string hash_token(std::string_view token);
    std::size_t count() const { return parts_.size(); }

  private:
    friend class PartialAppend;
    // Asks for a checkpoint of `p` at `offset` (hash state `sha`), data in `data_fd`.
    std::shared_ptr<Checkpoint> request_checkpoint(const PartialRef& p, int data_fd,
                                                   std::uint64_t offset, const Sha256& sha);
    void start_sync(const PartialRef& p);
    void sync_done(const PartialRef& p, int rc);
    int ensure_dir();
    int write_state(const Partial& p);
    void drop(const std::string& id);
    std::string path(const std::string& id, const char* ext) const;
    bool load_one(const std::string& id, std::int64_t now);
    void account();  // refresh the gauges in metrics

    Store* store_ = nullptr;
    Metrics* metrics_ = nullptr;
    Fd dir_;
    std::int64_t ttl_ = 86400;
    std::map<std::string, PartialRef, std::less<>> parts_;
    std::string sweep_cursor_;
    Helpers* helpers_ = nullptr;
    std::function<void()> synced_;
    std::size_t syncing_ = 0;
    bool held_ = false;
};

}  // namespace duet
