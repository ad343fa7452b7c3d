#pragma once
// Pieces of the answers to resumable-upload requests, shared by the routes (http_uploads.cpp)
// and the body side (http_upload_body.cpp).
#include <cstdint>
#include <string>
#include <string_view>

#include "duet/store/partial_store.hpp"
#include "duet/store/store.hpp"

namespace duet {

// An RFC 9457 problem body of one of the draft's problem types.
std::string problem_body(std::string_view type, std::string_view title, std::string extra = {});
// {"name","size","sha256"}: the answer to a completed upload, as PUT gives it.
std::string file_info_json(const FileInfo& f);
// Upload-Offset, Upload-Length when known, Upload-Expires, Tus-Resumable.
std::string state_fields(const Partial& p, std::int64_t expires);
// Upload-Draft-Interop-Version echoed, or nothing for tus and plain requests.
std::string interop_field(int version);

}  // namespace duet
