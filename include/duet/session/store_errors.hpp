#pragma once
// One classification of store errors for both ports: which ones are about the server rather than
// the file asked for, and so answered the same way on every route and command (503 for a lost
// store or exhausted resources, a park for a digest being computed, 507 for a full disk).
#include <cerrno>
#include <cstdint>

#include "duet/store/store.hpp"

namespace duet {

enum class StoreTrouble : std::uint8_t {
    None,      // about the file itself (missing, a precondition, ...): the caller answers it
    Gone,      // the store directory was removed or unmounted (kStoreGone): 503
    Busy,      // out of file descriptors or memory: 503, retry
    Wait,      // a digest or listing is being computed (-EINPROGRESS): park, or 503 when stopping
    DiskFull,  // no space, a quota, or a file size limit: 507
};

constexpr StoreTrouble classify_store_error(int rc) {
    if (rc == kStoreGone) return StoreTrouble::Gone;
    if (rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM) return StoreTrouble::Busy;
    if (rc == -EINPROGRESS) return StoreTrouble::Wait;
    if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG) return StoreTrouble::DiskFull;
    return StoreTrouble::None;
}

constexpr bool disk_full(int rc) {
    return classify_store_error(rc) == StoreTrouble::DiskFull;
}

}  // namespace duet
