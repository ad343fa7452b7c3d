#pragma once
// The HTTP side of resumable uploads (http_uploads.cpp): what an HTTP request body that appends
// to a partial upload carries while it streams.
#include <cstdint>

#include "duet/store/partial_store.hpp"

namespace duet {

enum class UploadDoor : std::uint8_t { Ietf, Tus };

struct ResumableBody {
    PartialAppend append;
    UploadDoor door = UploadDoor::Ietf;
    std::uint8_t interop = 0;   // IETF: the client's Upload-Draft-Interop-Version (echoed)
    bool complete = false;      // IETF: Upload-Complete: ?1 (this request ends the upload)
    bool creation = false;      // the request that created the partial (IETF or tus)
    bool has_checksum = false;  // tus Upload-Checksum: this append is all or nothing
    Digest checksum{};
    std::uint64_t announced = 0;  // the offset the last 104 reported
    PartialRef publishing;        // complete, its append ended: being published
};

}  // namespace duet
