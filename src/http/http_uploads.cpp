// Resumable uploads over HTTP (README "HTTP API"): the IETF draft (creation on /files/NAME with 104
// interim answers, HEAD/PATCH/DELETE on /uploads/ID) and tus 1.0.0 (OPTIONS/POST /uploads,
// HEAD/PATCH/DELETE /uploads/ID), both over the shared partial-upload store.
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "duet/core/base64.hpp"
#include "duet/core/clock.hpp"
#include "duet/core/json.hpp"
#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/http/http_upload_answers.hpp"
#include "duet/http/upload_fields.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {
namespace {

constexpr std::string_view kTusVersion = "1.0.0";
constexpr std::string_view kTusFields =
    "Tus-Resumable: 1.0.0\r\nTus-Version: 1.0.0\r\n"
    "Tus-Extension: creation,creation-with-upload,termination,expiration,checksum\r\n"
    "Tus-Checksum-Algorithm: sha256\r\n";
constexpr std::string_view kProblemBase = "https://iana.org/assignments/http-problem-types#";

std::string num(std::uint64_t v) {
    return std::to_string(v);
}

std::int64_t wall_now() {
    return wall_seconds();
}

// The media type of a Content-Type value, without parameters or surrounding spaces.
std::string_view media_type(const Request& req) {
    const Header* h = req.find("content-type");
    if (!h) return {};
    std::string_view v = h->value;
    std::size_t semi = v.find(';');
    if (semi != std::string_view::npos) v = v.substr(0, semi);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

bool tus_request(const Request& req) {
    return req.find("tus-resumable") != nullptr ||
           iequals(media_type(req), "application/offset+octet-stream");
}

}  // namespace

std::string problem_body(std::string_view type, std::string_view title, std::string extra) {
    std::string s = "{\"type\":\"";
    s.append(kProblemBase);
    s.append(type);
    s += "\",\"title\":\"";
    s.append(title);
    s += "\"";
    s += extra;
    s += "}\n";
    return s;
}

std::string file_info_json(const FileInfo& f) {
    return "{\"name\":\"" + json_escape(f.name) + "\",\"size\":" + num(f.size) + ",\"sha256\":\"" +
           to_hex(f.sha256) + "\"}\n";
}

// ---- helpers
// -------------------------------------------------------------------------------------

std::string HttpConn::upload_limit_field(const Partial* p) const {
    std::string s = "Upload-Limit: ";
    if (host().cfg.max_upload != UINT64_MAX) s += "max-size=" + num(host().cfg.max_upload) + ", ";
    std::int64_t age = host().partials.ttl();
    if (p) {
        age = host().partials.expires(*p) - wall_now();
        if (age < 0) age = 0;
    }
    s += "max-age=" + num(std::uint64_t(age)) + "\r\n";
    return s;
}

// An interim answer (never to HTTP/1.0 clients, RFC 9110 §15.2).
void HttpConn::send_interim(std::string_view fields) {
    if (ex_.minor == 0) return;
    ResponseHead head(104, host().date_header());
    head.raw(fields);
    queue(head.finish());
}

// What HEAD and every append answer carry about a partial.
std::string state_fields(const Partial& p, std::int64_t expires) {
    std::string s = "Upload-Offset: " + num(p.offset) + "\r\n";
    if (p.spec.length != kUnknownLength) s += "Upload-Length: " + num(p.spec.length) + "\r\n";
    s += "Upload-Expires: " + http_date(expires) + "\r\nTus-Resumable: 1.0.0\r\n";
    return s;
}

std::string interop_field(int version) {
    return version ? "Upload-Draft-Interop-Version: " + num(std::uint64_t(version)) + "\r\n"
                   : std::string();
}

// ---- routes
// --------------------------------------------------------------------------------------

void HttpConn::route_uploads(const Request& req, std::string_view id) {
    auto refuse = [&](int status, std::string_view msg, std::string_view fields = {}) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        respond_error(status, msg, fields);
    };
    if (const Header* v = req.find("tus-resumable"); v && v->value != kTusVersion)
        return refuse(412, "Only tus 1.0.0 is supported.", "Tus-Version: 1.0.0\r\n");
    if (id.empty()) {
        if (req.method == "POST") return tus_create(req);
        return list_uploads();
    }
    PartialRef p = host().partials.find(id);
    if (!p || !PartialStore::token_allows(*p, host().cfg.token))
        return refuse(404, "No upload has this ID.", "Tus-Resumable: 1.0.0\r\n");
    // An append that just ended is still making its last bytes durable (a helper's checkpoint):
    // whatever this request wants to know or do waits for that, as it would have on the loop.
    if (p->busy && !p->active) {
        if (std::shared_ptr<DiskWait> w = PartialStore::pending_sync(*p); w && !w->done)
            return host().park(this);
    }
    if (req.method == "GET" || req.method == "HEAD") return upload_status(req, p);
    if (req.method == "DELETE") {
        // An append in flight on another connection fails at its next write (draft §Concurrency:
        // the cancel wins).
        host().partials.remove(p);
        respond(204, {}, {}, "Tus-Resumable: 1.0.0\r\n");
        return;
    }
    upload_append(req, p);
}

void HttpConn::upload_options(const Request&) {
    std::string fields(kTusFields);
    if (host().cfg.max_upload != UINT64_MAX)
        fields += "Tus-Max-Size: " + num(host().cfg.max_upload) + "\r\n";
    fields += upload_limit_field(nullptr);
    fields += "Allow: GET, HEAD, POST, PATCH, DELETE, OPTIONS\r\n";
    respond(204, {}, {}, fields);
}

void HttpConn::list_uploads() {
    std::string body = "[";
    bool first = true;
    for (const PartialRef& p : host().partials.list()) {
        if (!PartialStore::token_allows(*p, host().cfg.token)) continue;
        if (!first) body += ',';
        first = false;
        body += "{\"id\":\"" + p->id + "\",\"name\":\"" + json_escape(p->spec.name) +
                "\",\"offset\":" + num(p->offset) + ",\"length\":" +
                (p->spec.length == kUnknownLength ? std::string("null") : num(p->spec.length)) +
                ",\"expires\":" + std::to_string(host().partials.expires(*p)) + "}";
    }
    body += "]\n";
    send_long_typed(200, "application/json", std::move(body));
}

void HttpConn::upload_status(const Request& req, const PartialRef& p) {
    // An append running on another connection first makes what it has durable (a checkpoint on
    // a helper; this request waits, parked), so the offset given here is as fresh as it can be
    // and never more than what survives a crash.
    std::shared_ptr<DiskWait>& wait = rare().head_wait;
    if (p->active && !wait) wait = p->active->checkpoint();
    if (wait && !wait->done) return host().park(this);
    wait.reset();
    std::string fields = state_fields(*p, host().partials.expires(*p));
    fields += "Upload-Complete: ?0\r\nCache-Control: no-store\r\n";
    fields += upload_limit_field(p.get());
    if (const Header* v = req.find("upload-draft-interop-version"))
        fields += interop_field(supported_interop_version(v->value));
    std::string name = p->spec.name;
    fields += "Upload-Metadata: filename " +
              base64_encode(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()) +
              "\r\n";
    // tus answers HEAD with 200, the draft with 204.
    respond(tus_request(req) ? 200 : 204, {}, {}, fields);
}

// What IETF and tus creation both check before a partial is made: the digest fields (Repr-Digest
// is of the whole upload; Content-Digest only of this request's content, which is the whole
// upload when `whole`), checked again at publish whichever door finishes; and RFC 9110 §13.2.2
// as for PUT, whose result must still hold at publish (compare-and-swap there). 0 to go on, a
// status to refuse with (`why` set), or -1 when preconditions() has answered already.
int HttpConn::creation_checks(const Request& req, const std::string& name, bool whole,
                              PartialSpec& spec, std::string_view& why) {
    // A folder on the way that is a file, or a folder under the name (README "Folders").
    bool folder = false;
    if (!host().index.upload_conflict(name, folder).empty()) {
        why = folder ? "A folder has this name." : "A folder on the way is a file.";
        return 409;
    }
    ExpectedDigest expected;
    if (!head_digests(req, whole, expected)) {
        why = "The digest field is malformed.";
        return 400;
    }
    if (expected.conflict) {
        why = "The digest fields disagree; no body can match them.";
        return 400;
    }
    spec.has_expected = expected.any;
    spec.expected = expected.d;
    if (!has_conditions(req)) return 0;
    FileInfo info;
    int st = host().store.stat(name, info);
    if (st == -EACCES) {
        why = kUnreadable;
        return 403;
    }
    // A digest being computed or a lookup on a helper (parked), or the store is gone.
    if (st != 0 && st != -ENOENT && store_trouble(st)) return -1;
    return preconditions(req, CondMethod::Put, info, st, spec.pre) ? -1 : 0;
}

// Creates the partial for a creation request, owned by the token when there is one. Its files are
// made on a helper: the first call parks the connection (nullptr, `status` 0) and the request
// runs again, then takes the partial. On failure `status` is 507 (disk full) or 500.
PartialRef HttpConn::new_partial(PartialSpec& spec, int& status) {
    status = 0;
    StoreOpRef op = host().take_store_op(this, StoreOp::Kind::PartialCreate);
    if (op && !op->done) {
        host().wait_store_op(this, std::move(op));
        return nullptr;
    }
    int rc = 0;
    if (!op) {
        if (!host().cfg.token.empty()) spec.token_hash = PartialStore::hash_token(host().cfg.token);
        rc = host().partials.create_async(spec, op);
        if (rc == 0) {
            host().wait_store_op(this, std::move(op));
            return nullptr;
        }
    } else {
        rc = op->rc;
    }
    PartialRef p = op ? static_cast<PartialCreateOp&>(*op).partial : nullptr;
    if (!p) status = disk_full(rc) ? 507 : 500;
    return p;
}

// IETF upload creation: PUT/POST /files/NAME with Upload-Complete and a supported interop
// version. false: not one (the caller treats the request as an ordinary upload).
bool HttpConn::create_resumable(const Request& req, const std::string& name) {
    const Header* iv = req.find("upload-draft-interop-version");
    int interop = iv ? supported_interop_version(iv->value) : 0;
    bool complete = false;
    if (!interop || !parse_sf_boolean(req.find("upload-complete")->value, complete)) return false;
    std::string echo = interop_field(interop);
    auto refuse = [&](int status, std::string_view msg, std::string fields = {}) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        respond_error(status, msg, echo + fields);
        return true;
    };
    auto inconsistent = [&] {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        respond(400, "application/problem+json",
                problem_body("inconsistent-upload-length", "inconsistent length values for upload"),
                echo + "Upload-Complete: ?0\r\n");
        return true;
    };
    PartialSpec spec;
    spec.name = name;
    std::string_view why;
    if (int rc = creation_checks(req, name, complete, spec, why); rc != 0) {
        if (rc > 0) refuse(rc, why);
        return true;
    }
    std::uint64_t v = 0;
    if (const Header* ul = req.find("upload-length"); ul && parse_sf_uint(ul->value, v))
        spec.length = v;
    if (complete && req.body != BodyKind::Chunked) {
        std::uint64_t implied = req.body == BodyKind::Length ? req.content_length : 0;
        if (spec.length != kUnknownLength && spec.length != implied) return inconsistent();
        spec.length = implied;
    }
    if (!complete && req.body == BodyKind::Length && spec.length != kUnknownLength &&
        req.content_length > spec.length)
        return inconsistent();
    std::uint64_t biggest = spec.length != kUnknownLength  ? spec.length
                            : req.body == BodyKind::Length ? req.content_length
                                                           : 0;
    std::string_view too_big;
    if (int status = size_refusal(biggest, too_big))
        return refuse(status, too_big, status == 413 ? upload_limit_field(nullptr) : std::string());
    int status = 0;
    PartialRef p = new_partial(spec, status);
    if (!p && status == 0) return true;  // parked: runs again when the files are made
    if (!p)
        return refuse(status, status == 507 ? "The disk is full; nothing was stored."
                                            : "The upload could not be started.");
    // Announced before any byte is read: from here on the client can always resume.
    send_interim("Location: /uploads/" + p->id + "\r\n" + echo + upload_limit_field(p.get()));
    auto rb = std::make_unique<ResumableBody>();
    rb->door = UploadDoor::Ietf;
    rb->interop = std::uint8_t(interop);
    rb->complete = complete;
    rb->creation = true;
    start_resumable(req, p, std::move(rb));
    return true;
}

void HttpConn::tus_create(const Request& req) {
    auto refuse = [&](int status, std::string_view msg, std::string_view fields = {}) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        respond_error(status, msg, std::string("Tus-Resumable: 1.0.0\r\n").append(fields));
    };
    if (!req.find("tus-resumable"))
        return refuse(412, "Tus-Resumable: 1.0.0 is required.", "Tus-Version: 1.0.0\r\n");
    PartialSpec spec;
    const Header* ul = req.find("upload-length");
    if (!ul) {
        return refuse(400, req.find("upload-defer-length")
                               ? "Upload-Defer-Length is not supported; send Upload-Length."
                               : "Upload-Length is required.");
    }
    if (!parse_sf_uint(ul->value, spec.length))
        return refuse(400, "Upload-Length must be a number of bytes.");
    const Header* md = req.find("upload-metadata");
    FieldResult fr = md ? parse_tus_metadata(md->value, spec.name) : FieldResult::Absent;
    if (fr == FieldResult::Malformed) return refuse(400, "Upload-Metadata is malformed.");
    if (fr == FieldResult::Absent)
        return refuse(400, "Upload-Metadata must carry the file name (filename BASE64).");
    if (std::string why = path_error(spec.name); !why.empty()) return refuse(400, why);
    // A Repr-Digest is of the whole upload; preconditions as on the IETF creation.
    std::string_view why;
    if (int rc = creation_checks(req, spec.name, false, spec, why); rc != 0) {
        if (rc > 0) refuse(rc, why);
        return;
    }
    std::string_view too_big;
    if (int status = size_refusal(spec.length, too_big)) return refuse(status, too_big);
    bool with_upload =
        req.body != BodyKind::None && !(req.body == BodyKind::Length && req.content_length == 0);
    if (with_upload && !iequals(media_type(req), "application/offset+octet-stream"))
        return refuse(415, "A creation with upload needs application/offset+octet-stream.");
    auto rb = std::make_unique<ResumableBody>();
    if (const Header* ck = req.find("upload-checksum")) {
        ChecksumResult cr = parse_tus_checksum(ck->value, rb->checksum);
        if (cr != ChecksumResult::Ok)
            return refuse(400, cr == ChecksumResult::Unsupported
                                   ? "Only the sha256 checksum algorithm is supported."
                                   : "Upload-Checksum is malformed.");
        rb->has_checksum = true;
    }
    int status = 0;
    PartialRef p = new_partial(spec, status);
    if (!p && status == 0) return;  // parked: runs again when the files are made
    if (!p)
        return refuse(status, status == 507 ? "The disk is full; nothing was stored."
                                            : "The upload could not be started.");
    rb->door = UploadDoor::Tus;
    rb->creation = true;
    start_resumable(req, p, std::move(rb));
}

void HttpConn::upload_append(const Request& req, const PartialRef& p) {
    bool tus = tus_request(req);
    const Header* iv = req.find("upload-draft-interop-version");
    int interop = iv ? supported_interop_version(iv->value) : 0;
    std::string echo = interop_field(interop);
    auto refuse = [&](int status, std::string_view msg, std::string fields = {}) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        respond_error(status, msg, "Tus-Resumable: 1.0.0\r\n" + echo + fields);
    };
    auto inconsistent = [&] {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        respond(400, "application/problem+json",
                problem_body("inconsistent-upload-length", "inconsistent length values for upload"),
                echo + "Upload-Complete: ?0\r\n");
    };
    auto rb = std::make_unique<ResumableBody>();
    rb->door = tus ? UploadDoor::Tus : UploadDoor::Ietf;
    rb->interop = std::uint8_t(interop);
    if (tus) {
        if (!req.find("tus-resumable"))
            return refuse(412, "Tus-Resumable: 1.0.0 is required.", "Tus-Version: 1.0.0\r\n");
        if (!iequals(media_type(req), "application/offset+octet-stream"))
            return refuse(415, "A tus PATCH needs Content-Type: application/offset+octet-stream.");
        if (const Header* ck = req.find("upload-checksum")) {
            ChecksumResult cr = parse_tus_checksum(ck->value, rb->checksum);
            if (cr != ChecksumResult::Ok)
                return refuse(400, cr == ChecksumResult::Unsupported
                                       ? "Only the sha256 checksum algorithm is supported."
                                       : "Upload-Checksum is malformed.");
            rb->has_checksum = true;
        }
    } else {
        if (!iequals(media_type(req), "application/partial-upload"))
            return refuse(415, "An append needs Content-Type: application/partial-upload.");
        const Header* uc = req.find("upload-complete");
        if (!uc || !parse_sf_boolean(uc->value, rb->complete))
            return refuse(400, "An append needs Upload-Complete: ?0 or ?1.");
    }
    const Header* uo = req.find("upload-offset");
    std::uint64_t offset = 0;
    if (!uo || !parse_sf_uint(uo->value, offset))
        return refuse(400, "An append needs Upload-Offset.");
    if (p->busy) return refuse(409, "Another append to this upload is in progress.");
    if (offset != p->offset) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        std::string fields = "Upload-Offset: " + num(p->offset) +
                             "\r\nUpload-Complete: ?0\r\nTus-Resumable: 1.0.0\r\n" + echo;
        respond(409, "application/problem+json",
                problem_body("mismatching-upload-offset",
                             "offset from request does not match offset of resource",
                             ",\"expected-offset\":" + num(p->offset) +
                                 ",\"provided-offset\":" + num(offset)),
                fields);
        return;
    }
    // Lengths: what the request implies must agree with what is known (draft §Length).
    std::uint64_t length = p->spec.length, v = 0;
    if (const Header* ul = req.find("upload-length"); ul && parse_sf_uint(ul->value, v)) {
        if (length != kUnknownLength && v != length) return inconsistent();
        length = v;
    }
    if (!tus && rb->complete && req.body != BodyKind::Chunked) {
        std::uint64_t implied = offset + (req.body == BodyKind::Length ? req.content_length : 0);
        if (length != kUnknownLength && implied != length) return inconsistent();
        length = implied;
    }
    if (length != kUnknownLength && length < p->offset) return inconsistent();
    if (length != p->spec.length && host().partials.set_length(*p, length) < 0)
        return refuse(500, "The upload length could not be recorded.");
    std::uint64_t cl = req.body == BodyKind::Length ? req.content_length : 0;
    if (length != kUnknownLength && offset + cl > length) {
        // The draft: an upload past its length is invalid from now on.
        host().partials.remove(p);
        return refuse(400, "The append goes past Upload-Length; the upload is cancelled.");
    }
    if (offset + cl > host().cfg.max_upload)
        return refuse(413, "The upload is larger than the server accepts.",
                      upload_limit_field(p.get()));
    // A Repr-Digest on an append is still of the whole upload (and a Content-Digest too when
    // this append is all of it): remembered with the partial and checked at publish.
    ExpectedDigest expected;
    if (!head_digests(req, !tus && offset == 0 && rb->complete, expected))
        return refuse(400, "The digest field is malformed.");
    if (int rc = expect_digest(p, expected); rc != 0)
        return rc > 0 ? refuse(400, "The digest differs from the one the upload expects.")
                      : refuse(500, "The digest could not be recorded.");
    start_resumable(req, p, std::move(rb));
}

int HttpConn::expect_digest(const PartialRef& p, const ExpectedDigest& e) {
    if (!e.any) return 0;
    if (e.conflict || (p->spec.has_expected && p->spec.expected != e.d)) return 1;
    if (p->spec.has_expected) return 0;
    PartialSpec spec = p->spec;
    spec.has_expected = true;
    spec.expected = e.d;
    return host().partials.set_spec(*p, spec);
}

}  // namespace duet
