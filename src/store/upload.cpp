// One upload in progress: its temporary file in the store and its running SHA-256 (store.hpp),
// both fed on a helper through the upload's pipe (write_pipe.hpp). Its file is made by
// Store::begin_upload; it is published by commit (store_publish.cpp).
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
      tmp_name_(std::exchange(o.tmp_name_, std::string())),
      data_synced_(std::exchange(o.data_synced_, false)),
      defer_dir_sync_(std::exchange(o.defer_dir_sync_, false)),
      pipe_(std::exchange(o.pipe_, WritePipe())) {}

Upload& Upload::operator=(Upload&& o) noexcept {
    if (this != &o) {
        abort();
        store_ = std::exchange(o.store_, nullptr);
        fd_ = std::move(o.fd_);
        sha_ = o.sha_;
        size_ = std::exchange(o.size_, 0);
        tmp_name_ = std::exchange(o.tmp_name_, std::string());
        data_synced_ = std::exchange(o.data_synced_, false);
        defer_dir_sync_ = std::exchange(o.defer_dir_sync_, false);
        pipe_ = std::exchange(o.pipe_, WritePipe());
    }
    return *this;
}

Upload::~Upload() {
    abort();
}

void Upload::reset_state() {
    pipe_.close();
    fd_.reset();
    store_ = nullptr;
    sha_.reset();
    size_ = 0;
    tmp_name_.clear();
    data_synced_ = defer_dir_sync_ = false;
}

void Upload::abort() {
    // A helper may still write the buffer it holds into the file, which it closes after:
    // harmless, the file is unnamed or about to be.
    pipe_.abandon(false);
    // An O_TMPFILE file vanishes with its fd; only a named temporary needs unlinking.
    if (!tmp_name_.empty() && store_) ::unlinkat(store_->dirfd(), tmp_name_.c_str(), 0);
    reset_state();
}

// The file goes into the pipe with the first bytes and comes back when it is settled.
void Upload::open_pipe() {
    if (!pipe_.active())
        pipe_.open(store_->pipe_runner(), std::move(fd_), size_, sha_, nullptr, kWritebackChunk);
}

int Upload::write(const void* data, std::size_t len) {
    if (!active() || !store_) return -EBADF;
    open_pipe();
    if (int rc = pipe_.write(data, len); rc < 0) return rc;
    size_ += len;
    return 0;
}

std::shared_ptr<DiskWait> Upload::sync_later() {
    if (!active() || !store_) {
        auto w = std::make_shared<DiskWait>();
        w->done = true;
        w->rc = -EBADF;
        return w;
    }
    open_pipe();
    return pipe_.finish(true);
}

int Upload::settle() {
    if (!pipe_.active()) return 0;
    if (!pipe_.idle()) return -EINPROGRESS;
    int rc = pipe_.error();
    sha_ = pipe_.sha();
    size_ = pipe_.offset();  // less than taken only after a write error
    fd_ = pipe_.take_file();
    return rc;
}

int Upload::settle_now() {
    pipe_.wait_idle();
    return settle();
}

}  // namespace duet
