// A resumable-upload append in flight crossing a reload: the partial's ID, the data file (by fd),
// where this append began and how far it got, and the three hash states (whole upload, at the
// append's start for a rollback, this append's bytes for a tus checksum). Nothing is made durable
// for the hand-over: the bytes past the partial's durable offset are in the file the fd names,
// and the next image checkpoints them as this one would have. A reload waits for checkpoints
// on helpers (PartialStore::syncing) before it hands anything over, so the state file the next
// image loads is the one this image last announced.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duet/core/handover_record.hpp"
#include "duet/store/partial_store.hpp"

namespace duet {
namespace {
// Field tags of an append record. Add a field: one line in hand_over, one in resume_append.
enum : std::uint16_t {
    kId = 1,
    kFile = 2,
    kOffset = 3,
    kStart = 4,
    kHold = 5,
    kSha = 6,
    kStartSha = 7,
    kAppendSha = 8,
};
}  // namespace

void PartialAppend::hand_over(RecordWriter& w) {
    if (!p_) return;
    settle_now();  // the file as the record describes it
    if (failed() < 0 || write_error_ < 0) {
        // A checkpoint failed: the bytes after the durable offset may be lost even if a later
        // fdatasync succeeds; or a write failed before the client heard of it. The next image
        // goes on from the durable offset instead.
        offset_ = p_->offset;
        sha_ = p_->sha;
        (void)::ftruncate(fd_.get(), off_t(offset_));
        last_.reset();
    }
    w.bytes(kId, p_->id);
    w.u64(kOffset, offset_);
    w.u64(kStart, start_);
    w.flag(kHold, hold_);
    w.bytes(kSha, sha_.save());
    w.bytes(kStartSha, start_sha_.save());
    w.bytes(kAppendSha, append_sha_.save());
    w.fd(kFile, std::move(fd_));
    // Released without a checkpoint or a rollback: the append goes on in the next image.
    p_->busy = false;
    p_->active = nullptr;
    p_.reset();
    store_ = nullptr;
    hold_ = false;
}

bool PartialStore::resume_append(RecordReader& r, PartialAppend& ap) {
    ap.end();
    PartialRef p = find(r.bytes(kId));
    if (!p || p->gone) return r.fail("append: no such partial upload");
    if (p->busy) return r.fail("append: the partial upload is busy");
    std::uint64_t offset = 0, start = 0;
    if (!r.u64(kOffset, offset) || !r.u64(kStart, start)) return r.fail("append: no offsets");
    bool hold = r.flag(kHold);
    // The partial's durable offset (its state file, loaded by this image) lies within the
    // append; a held append has made nothing durable yet.
    if (start > p->offset || p->offset > offset || (hold && p->offset != start) ||
        (p->spec.length != kUnknownLength && offset > p->spec.length))
        return r.fail("append: offsets do not match the partial upload");
    Sha256 sha, start_sha, append_sha;
    if (!sha.restore(r.bytes(kSha)) || !start_sha.restore(r.bytes(kStartSha)) ||
        !append_sha.restore(r.bytes(kAppendSha)) || sha.bytes() != offset ||
        start_sha.bytes() != start ||
        (hold && append_sha.bytes() != offset - start))  // only a held append hashes its own bytes
        return r.fail("append: bad hash state");
    Fd fd;
    if (!r.fd(kFile, fd)) return r.fail("append: no data file");
    struct stat st;
    int mode = fcntl(fd.get(), F_GETFL);
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || mode < 0 ||
        (mode & O_ACCMODE) == O_RDONLY || std::uint64_t(st.st_size) != offset)
        return r.fail("append: the data file does not match the record");
    p->busy = true;
    p->active = &ap;
    ap.store_ = this;
    ap.p_ = p;
    ap.fd_ = std::move(fd);
    ap.sha_ = sha;
    ap.start_sha_ = start_sha;
    ap.append_sha_ = append_sha;
    ap.offset_ = offset;
    ap.start_ = start;
    ap.write_error_ = 0;
    ap.since_checkpoint_ = offset - p->offset;
    ap.hold_ = hold;
    ap.last_.reset();
    return true;
}

}  // namespace duet
