// An upload in flight crossing a reload: its temporary file (by fd), what was written, the hash.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include "duet/core/handover_record.hpp"
#include "duet/store/store.hpp"

namespace duet {
namespace {
// Field tags of an upload record. Add a field: one line in hand_over, one in resume.
enum : std::uint16_t {
    kUploadFile = 1,
    kUploadSize = 2,
    kUploadSynced = 3,
    kUploadTempName = 4,
    kUploadSha = 5
};
}  // namespace

std::string encode_precondition(const Precondition& p) {
    std::string out(1, static_cast<char>(p.kind));
    if (p.kind == Precondition::Kind::MustMatch)
        out.append(reinterpret_cast<const char*>(p.etag.data()), p.etag.size());
    return out;
}

bool decode_precondition(std::string_view bytes, Precondition& out) {
    Precondition p;
    if (bytes.empty()) {  // a record from before preconditions: none
        out = p;
        return true;
    }
    auto kind = static_cast<std::uint8_t>(bytes[0]);
    if (kind > std::uint8_t(Precondition::Kind::MustNotExist)) return false;
    p.kind = static_cast<Precondition::Kind>(kind);
    bool match = p.kind == Precondition::Kind::MustMatch;
    if (bytes.size() != (match ? 1 + p.etag.size() : 1)) return false;
    if (match) std::memcpy(p.etag.data(), bytes.data() + 1, p.etag.size());
    out = p;
    return true;
}

void Upload::hand_over(RecordWriter& w) {
    // What the pipe holds is written first (a few buffers at most): the record describes the file
    // as it is. After a write error the record has the bytes that made it, and the client's
    // count will come up short in the next image.
    (void)settle_now();
    w.u64(kUploadSize, size_);
    // Writeback is the pipe's business now; the field stays for images that read it.
    w.u64(kUploadSynced, size_);
    w.bytes(kUploadSha, sha_.save());
    if (!tmp_name_.empty()) w.bytes(kUploadTempName, tmp_name_);
    w.fd(kUploadFile, std::move(fd_));
    tmp_name_.clear();  // the name belongs to the next image now: abort() must not unlink it
    reset_state();
}

bool Upload::resume(Store& store, RecordReader& r) {
    abort();
    Fd fd;
    std::uint64_t size = 0, synced = 0;
    if (!r.fd(kUploadFile, fd)) return r.fail("upload: no temporary file");
    if (!r.u64(kUploadSize, size) || !r.u64(kUploadSynced, synced) || synced > size)
        return r.fail("upload: bad byte counts");
    struct stat st;
    int mode = fcntl(fd.get(), F_GETFL);
    // The file must be a writable regular file holding exactly the bytes the hash has seen.
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || mode < 0 ||
        (mode & O_ACCMODE) == O_RDONLY || std::uint64_t(st.st_size) != size)
        return r.fail("upload: the temporary file does not match the record");
    Sha256 sha;
    if (!sha.restore(r.bytes(kUploadSha))) return r.fail("upload: bad hash state");
    std::string_view tmp = r.bytes(kUploadTempName);
    if (!tmp.empty() && (!store_detail::is_temp_name(tmp) || tmp.size() > 255 ||
                         tmp.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos))
        return r.fail("upload: bad temporary name");
    store_ = &store;
    fd_ = std::move(fd);
    sha_ = sha;
    size_ = size;
    tmp_name_ = std::string(tmp);
    return true;
}

}  // namespace duet
