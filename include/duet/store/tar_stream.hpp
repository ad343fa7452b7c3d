#pragma once
// A folder as one POSIX tar (README "Folders"): ustar headers, with a pax header before an entry
// whose name is over 100 bytes or whose size is over what ustar's octal field holds (8 GiB).
// The length is known before the first byte, from a snapshot of the folder taken from the index;
// each file's bytes then go out by sendfile (take_file), so memory does not grow with the files.
// A file that no longer matches the snapshot (size or mtime) when its turn comes cuts the stream
// (failed()): the client sees a short download, never different bytes under an announced name.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duet/core/body_source.hpp"
#include "duet/core/fd.hpp"
#include "duet/event/helpers.hpp"

namespace duet {

struct TarEntry {
    std::string name;  // relative to the folder archived; a folder's ends in '/'
    std::string path;  // from the store's top folder (files: to open them)
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    bool dir = false;
};

// The header blocks of one entry (a pax header first when needed), a multiple of 512 bytes.
std::string tar_header(const TarEntry& e);
// The whole archive's length: every header, the data padded to 512, two zero blocks at the end.
std::uint64_t tar_length(const std::vector<TarEntry>& entries);

class TarStream final : public BodySource {
  public:
    // With `helpers`, the next file's lookup is warmed on a helper while one is sent, so that its
    // open on the loop finds it in the kernel's caches.
    TarStream(int store_dir, std::vector<TarEntry> entries, Helpers* helpers = nullptr);
    std::uint64_t length() const { return length_; }
    std::size_t fill(char* p, std::size_t room) override;
    bool done() const override { return done_; }
    bool take_file(Fd& fd, off_t& offset, std::uint64_t& length) override;
    bool failed() const override { return failed_; }
    bool can_write_ahead() const override { return false; }
    // Reload (README "Folders"): what is left to send, as bytes; decode() rebuilds it in the next
    // image (nullptr for bytes it could not have written). The file range in flight is the
    // connection's, carried beside it.
    bool encode(std::string& out) const override;
    static std::unique_ptr<TarStream> decode(int store_dir, std::string_view bytes,
                                             Helpers* helpers = nullptr);

  private:
    // Moves to the next entry: its header becomes pending_.
    void next_entry();
    // Looks the next file after entries_[at_] up on a helper (warming the caches).
    void warm_next();

    int dir_;
    Helpers* helpers_ = nullptr;
    std::vector<TarEntry> entries_;
    std::size_t at_ = 0;   // the entry whose header is pending or whose data is due
    std::string pending_;  // bytes to copy out before anything else (headers, padding)
    std::size_t pending_off_ = 0;
    bool data_due_ = false;  // entries_[at_]'s bytes come next (take_file)
    bool started_ = false;
    bool done_ = false;
    bool failed_ = false;
    std::uint64_t length_ = 0;
};

}  // namespace duet
