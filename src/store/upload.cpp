// One upload in progress: its temporary file in the store and its running SHA-256 (store.hpp).
// Its file is made by Store::begin_upload; it is published by commit (store_publish.cpp).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "duet/store/store.hpp"

namespace duet {
namespace {

// Push written data to the disk in the background every this many bytes, so the fsync at commit
// only has the tail left to wait for.
constexpr std::uint64_t kWritebackChunk = 8u << 20;

}  // namespace

Upload::Upload(Upload&& o) noexcept
    : store_(std::exchange(o.store_, nullptr)),
      fd_(std::move(o.fd_)),
      sha_(o.sha_),
      size_(std::exchange(o.size_, 0)),
      synced_(std::exchange(o.synced_, 0)),
      tmp_name_(std::exchange(o.tmp_name_, std::string())),
      data_synced_(std::exchange(o.data_synced_, false)),
      defer_dir_sync_(std::exchange(o.defer_dir_sync_, false)) {}

Upload& Upload::operator=(Upload&& o) noexcept {
    if (this != &o) {
        abort();
        store_ = std::exchange(o.store_, nullptr);
        fd_ = std::move(o.fd_);
        sha_ = o.sha_;
        size_ = std::exchange(o.size_, 0);
        synced_ = std::exchange(o.synced_, 0);
        tmp_name_ = std::exchange(o.tmp_name_, std::string());
        data_synced_ = std::exchange(o.data_synced_, false);
        defer_dir_sync_ = std::exchange(o.defer_dir_sync_, false);
    }
    return *this;
}

Upload::~Upload() {
    abort();
}

void Upload::reset_state() {
    fd_.reset();
    store_ = nullptr;
    sha_.reset();
    size_ = synced_ = 0;
    tmp_name_.clear();
    data_synced_ = defer_dir_sync_ = false;
}

void Upload::abort() {
    // An O_TMPFILE file vanishes with its fd; only a named temporary needs unlinking.
    if (!tmp_name_.empty() && store_) ::unlinkat(store_->dirfd(), tmp_name_.c_str(), 0);
    reset_state();
}

int Upload::write(const void* data, std::size_t len) {
    if (!fd_) return -EBADF;
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        ssize_t n = ::write(fd_.get(), p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO;
        sha_.update(p, static_cast<std::size_t>(n));
        p += n;
        len -= static_cast<std::size_t>(n);
        size_ += static_cast<std::uint64_t>(n);
    }
    if (size_ - synced_ >= kWritebackChunk) {
        // Starts writeback without waiting for it; errors surface at the fsync in commit().
        ::sync_file_range(fd_.get(), static_cast<off64_t>(synced_),
                          static_cast<off64_t>(size_ - synced_), SYNC_FILE_RANGE_WRITE);
        synced_ = size_;
    }
    return 0;
}

}  // namespace duet
