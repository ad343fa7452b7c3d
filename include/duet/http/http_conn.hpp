#pragma once
// One HTTP/1.x connection: framing (heads, bodies, keep-alive, pipelining) in http_conn.cpp,
// routes in http_routes.cpp, the /files routes in http_files.cpp.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "duet/http/http_body.hpp"
#include "duet/http/http_conditional.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/http/http_parser.hpp"
#include "duet/http/http_response.hpp"
#include "duet/http/http_uploads.hpp"
#include "duet/net/conn.hpp"
#include "duet/session/publish_stage.hpp"
#include "duet/session/session.hpp"
#include "duet/store/change_feed.hpp"
#include "duet/store/store.hpp"

namespace duet {

// Shared by the plain and the resumable uploads (http_files.cpp).
inline constexpr std::string_view kPreconditionFailed =
    "A precondition of the request does not hold.";
inline constexpr std::string_view kUnreadable = "The file exists but the server may not read it.";
// Any of the RFC 9110 §13.1 preconditions a PUT or DELETE looks at.
bool has_conditions(const Request& req);
// Every Repr-Digest line of the head (and, with `content`, every Content-Digest line: for an
// upload whose content is the whole file they describe the same bytes). false when malformed.
bool head_digests(const Request& req, bool content, ExpectedDigest& out);
// The same over a chunked trailer section.
bool trailer_digests(std::string_view trailers, bool content, ExpectedDigest& out);

class HttpConn final : public Session {
  public:
    HttpConn(SessionHost& host, int fd) : Session(host, fd, Port::Http) {}
    ~HttpConn() override;
    void on_header_timeout() override;
    void on_idle_timeout() override;
    void begin_drain(bool for_reload) override;
    void on_quiet() override;
    bool is_idle() const override;
    bool publishing() const override { return body_ && body_->stage != PublishStage::None; }

    // Reload hand-over (http_handover.cpp): the whole session state, in whatever state it is.
    // resume() rebuilds a connection from its record; nullptr (with r.error()) when it cannot be
    // read.
    static constexpr std::uint16_t kRecordVersion = 1;
    static Conn* resume(SessionHost& host, std::uint16_t version, RecordReader& r,
                        std::int64_t& head_left_ms);

  protected:
    void encode_state(RecordWriter& w) override;
    char record_kind() const override { return kRecordHttp; }
    std::uint16_t record_version() const override { return kRecordVersion; }
    bool process() override;
    void on_eof() override;
    bool wants_input() const override;

  private:
    bool resume_state(RecordReader& r);
    // A request body being read: stored by an upload, or read and dropped.
    struct Body {
        BodyKind kind = BodyKind::None;
        std::uint64_t left = 0;  // Content-Length bytes still to come
        ChunkedDecoder chunked;
        Upload upload;  // inactive: the body is discarded
        std::string name;
        ExpectedDigest expected;
        Precondition pre;
        std::unique_ptr<ResumableBody> resumable;  // appends to a partial upload instead
        // Publishing, with the fsyncs and the rename on helpers. The body stays until the
        // answer is queued.
        PublishStage stage = PublishStage::None;
        bool peer_gone = false;  // the client half-closed meanwhile: close after the answer
        std::shared_ptr<DiskWait> wait;
        FileInfo info;
        bool created = false;
    };

    // Per-request answer context, set before routing.
    struct Exchange {
        bool head_only = false;
        bool keep_alive = true;
        std::uint8_t minor = 1;
        std::uint8_t cors = 0;     // 1 + index of the --cors entry the Origin matched; 0: none
        bool vary_accept = false;  // the answer depends on Accept (README "The page")
    };

    void handle(const Request& req);
    void route(const Request& req);
    void route_files_list(const Request& req);
    // The page (http_page.cpp, README "The page"): a browser's navigation to `/` or a folder.
    bool wants_page(const Request& req) const;
    void route_page(const Request& req, std::string_view raw_folder);
    void send_page(std::string html);
    void serve_asset(const Request& req, std::string_view name);
    // GET /events (http_events.cpp): from its answer on, the connection is an event stream.
    struct EventStream;
    void start_events(const Request& req);
    bool events_active() const { return rare_ && rare_->events; }
    bool pump_events();
    void end_events();
    void route_file(const Request& req, std::string_view raw_name);
    // Folders (http_folders.cpp, README "Folders"): a path that names one (trailing '/', or
    // MKCOL), its listing, MKCOL.
    void route_folder(const Request& req, const std::string& path);
    void list_folder(const Request& req, const std::string& path);
    void make_folder(const std::string& path);
    void delete_folder(const std::string& path);
    void archive_folder(const std::string& path);
    void move_entry(const Request& req, const std::string& src);
    // A PUT into a folder that is a file, or onto a folder: 409 before any byte is read.
    bool path_conflict(const Request& req, const std::string& name);
    void get_file(const Request& req, const std::string& name);
    void put_file(const Request& req, const std::string& name);
    // An upload of `size` bytes that can never fit (over --max-upload: 413; over the store's file
    // system: 413) or does not fit now (over its free space: 507): the status, with `msg`; else 0.
    int size_refusal(std::uint64_t size, std::string_view& msg);
    void delete_file(const Request& req, const std::string& name);
    bool preconditions(const Request& req, CondMethod m, const FileInfo& info, int rc,
                       Precondition& pre, std::string_view extra_fields = {});
    bool needs_token(const Request& req) const;
    // Resumable uploads and CORS (http_uploads.cpp, http_cors.cpp).
    void route_uploads(const Request& req, std::string_view id);
    bool create_resumable(const Request& req, const std::string& name);
    PartialRef new_partial(PartialSpec& spec, int& status);
    int creation_checks(const Request& req, const std::string& name, bool whole, PartialSpec& spec,
                        std::string_view& why);
    void tus_create(const Request& req);
    void upload_status(const Request& req, const PartialRef& p);
    void upload_append(const Request& req, const PartialRef& p);
    void upload_options(const Request& req);
    void list_uploads();
    bool start_resumable(const Request& req, const PartialRef& p,
                         std::unique_ptr<ResumableBody> rb);
    bool feed_resumable(std::string_view chunk);
    bool finish_resumable();
    bool after_last_checkpoint();
    bool advance_partial_publish();
    void publish_failed(const ResumableBody& rb, int rc);
    void published_answer(const ResumableBody& rb, const PartialRef& p);
    std::string done_fields(const ResumableBody& rb) const;
    // Folds a request's digests into what the partial expects: 0, 1 when they disagree with it
    // (or each other), or -errno when it could not be recorded.
    int expect_digest(const PartialRef& p, const ExpectedDigest& e);
    std::string upload_limit_field(const Partial* p) const;
    void send_interim(std::string_view fields);
    bool cors_match(const Request& req);
    bool cors_preflight(const Request& req);
    void cors_fields(ResponseHead& head) const;
    bool store_trouble(int rc);

    // Response helpers. Each queues one whole response (head, then body unless HEAD) and counts
    // it; `head` already holds the status line and the route's own fields.
    void send(ResponseHead& head, std::string_view body);
    void send_long(ResponseHead& head, std::string body);
    void send_long_typed(int status, std::string_view content_type, std::string body);
    void send_file(ResponseHead& head, Fd file, std::uint64_t offset, std::uint64_t length);
    void respond(int status, std::string_view content_type, std::string_view body,
                 std::string_view extra_fields = {});
    void respond_error(int status, std::string_view message, std::string_view extra_fields = {});
    // Answers, then closes.
    void respond_fatal(int status, std::string_view message, std::string_view extra_fields = {});
    void end_head(ResponseHead& head, std::uint64_t length);

    bool parse_due(std::size_t size) const;
    bool feed_body();
    bool finish_upload();
    bool advance_publish();
    void upload_failed(int rc);
    void start_body(const Request& req, bool store);
    void log_access(int status, std::uint64_t bytes);
    void set_log_line(std::string line);

    std::unique_ptr<Body> body_;
    // What few requests need, allocated when first needed: an idle connection stays in a
    // 240-byte allocation (bench/footprint.sh counts user-space bytes per idle connection).
    struct Rare {
        std::optional<std::string> log_line;  // "METHOD TARGET HTTP/1.x", only with --access-log
        // HEAD /uploads/ID of a partial whose append runs elsewhere: its checkpoint first.
        std::shared_ptr<DiskWait> head_wait;
        std::unique_ptr<EventStream> events;  // GET /events, once answered
    };
    Rare& rare();
    std::unique_ptr<Rare> rare_;
    std::uint32_t requests_ = 0;
    std::uint32_t scanned_ = 0;  // bytes of in_ already known to hold no new line
    Exchange ex_;
    bool drain_close_ = false;
    bool reload_handover_ = false;
};

// An event stream's place in the store's change feed (http_events.cpp).
struct HttpConn::EventStream final : ChangeFeed::Listener {
    EventStream(HttpConn& c, ChangeFeed& f) : conn(c), feed(f) { feed.subscribe(this); }
    ~EventStream() { feed.unsubscribe(this); }
    EventStream(const EventStream&) = delete;
    EventStream& operator=(const EventStream&) = delete;
    void on_change() override { poke(); }
    void on_keepalive() override {
        keepalive_due = true;
        poke();
    }
    // The connection writes what is new at the end of this loop step, not from inside the
    // change that caused it.
    void poke();
    HttpConn& conn;
    ChangeFeed& feed;
    std::uint64_t cursor = 0;  // the last event id sent
    bool keepalive_due = false;
};

}  // namespace duet
