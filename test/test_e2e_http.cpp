// Black-box tests of the HTTP port: the built-in routes, keep-alive and pipelining, every protocol
// error of README "HTTP API", timeouts, --max-conns, and the command line. Each test starts
// build/duet-san on port 0 and talks to it over raw sockets.
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;  // the server under test, see t::boot

using t::teardown;

using t::boot;

std::string get(const std::string& path, const std::string& fields = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n";
}

std::string req(const std::string& method, const std::string& path) {
    return method + " " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

int connect_http() {
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0, "connect failed");
    return fd;
}

using t::is_json_error;

// Sends `raw` on a fresh connection, expects `status` with a JSON error body, then a close.
void expect_fatal(const std::string& what, const std::string& raw, int status) {
    int fd = connect_http();
    t::send_all(fd, raw);
    std::string r = t::read_response(fd, false, 5000);
    cr_expect_eq(t::status_of(r), status, "%s: got %d, want %d: %s", what.c_str(), t::status_of(r),
                 status, r.c_str());
    cr_expect(is_json_error(r), "%s: not a JSON error: %s", what.c_str(), r.c_str());
    cr_expect(!t::header_of(r, "Date").empty(), "%s: no Date", what.c_str());
    cr_expect(t::peer_closed(fd, 3000), "%s: connection left open after %d", what.c_str(), status);
    close(fd);
}

std::string duet_cmd(const std::string& args) {
    return "ASAN_OPTIONS=detect_leaks=0 " + t::duet_binary() + " " + args;
}

std::size_t count_lines(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

}  // namespace

TestSuite(e2e_http, .fini = teardown, .timeout = 30);

// ---- built-in routes ----

Test(e2e_http, root_answers_json_with_date_server_length_and_type) {
    boot();
    std::string r = t::http(g_srv.http_port, get("/"));
    cr_assert_eq(t::status_of(r), 200, "%s", r.c_str());
    std::string body = t::body_of(r);
    cr_expect(body.find("\"name\":\"duet\"") != std::string::npos, "%s", body.c_str());
    cr_expect(body.find("\"version\":\"") != std::string::npos, "%s", body.c_str());
    cr_expect(body.find("\"generation\":0") != std::string::npos, "%s", body.c_str());
    cr_expect_eq(t::header_of(r, "Content-Type"), "application/json");
    cr_expect_eq(t::header_of(r, "Content-Length"), std::to_string(body.size()));
    std::string date = t::header_of(r, "Date");
    cr_expect(date.size() == 29 && date.substr(26) == "GMT", "Date: %s", date.c_str());
    // Server: duet/VERSION, the same version the body names.
    std::size_t v = body.find("\"version\":\"") + 11;
    std::string version = body.substr(v, body.find('"', v) - v);
    cr_expect_eq(t::header_of(r, "Server"), "duet/" + version);
}

Test(e2e_http, head_root_has_same_length_and_no_body) {
    boot();
    std::string full = t::http(g_srv.http_port, get("/"));
    int fd = connect_http();
    // HEAD then GET on one connection: if HEAD sent a body, the second status line would be off.
    t::send_all(fd, req("HEAD", "/") + get("/healthz"));
    std::string head = t::read_response(fd, true);
    cr_expect_eq(t::status_of(head), 200, "%s", head.c_str());
    cr_expect_eq(t::header_of(head, "Content-Length"), t::header_of(full, "Content-Length"));
    cr_expect_eq(t::body_of(head), "");
    std::string next = t::read_response(fd);
    cr_expect_eq(t::status_of(next), 200, "bytes after HEAD: %s", next.c_str());
    cr_expect_eq(t::body_of(next), "ok\n");
    close(fd);
}

Test(e2e_http, healthz_says_ok) {
    boot();
    std::string r = t::http(g_srv.http_port, get("/healthz"));
    cr_expect_eq(t::status_of(r), 200);
    cr_expect_eq(t::body_of(r), "ok\n");
    cr_expect(t::header_of(r, "Content-Type").rfind("text/plain", 0) == 0);
    cr_expect_eq(t::header_of(r, "Content-Length"), "3");
}

Test(e2e_http, metrics_count_statuses_connections_bytes_and_uptime) {
    boot();
    t::http(g_srv.http_port, get("/nowhere"));
    t::http(g_srv.http_port, get("/nowhere"));
    int held = connect_http();  // one more open HTTP connection while metrics are taken
    t::send_all(held, get("/healthz"));
    t::read_response(held);
    std::string r = t::http(g_srv.http_port, get("/metrics"));
    cr_assert_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect(t::header_of(r, "Content-Type").rfind("text/plain", 0) == 0);
    std::string m = t::body_of(r);
    cr_expect(m.find("# TYPE ") != std::string::npos, "%s", m.c_str());
    cr_expect(m.find("duet_http_requests_total{code=\"404\"} 2\n") != std::string::npos, "%s",
              m.c_str());
    cr_expect(m.find("duet_http_requests_total{code=\"200\"} 1\n") != std::string::npos, "%s",
              m.c_str());
    // Two HTTP connections are open: the held one and the one asking.
    cr_expect(m.find("duet_open_connections{port=\"http\"} 2\n") != std::string::npos, "%s",
              m.c_str());
    cr_expect(m.find("duet_open_connections{port=\"files\"} 0\n") != std::string::npos, "%s",
              m.c_str());
    cr_expect(m.find("duet_received_bytes_total ") != std::string::npos);
    cr_expect(m.find("duet_sent_bytes_total ") != std::string::npos);
    cr_expect(m.find("duet_received_bytes_total 0\n") == std::string::npos);
    cr_expect(m.find("duet_uptime_seconds ") != std::string::npos);
    cr_expect(m.find("duet_uploads_total") != std::string::npos);
    cr_expect(m.find("duet_reloads_total") != std::string::npos);
    cr_expect(m.find("duet_stored_files") != std::string::npos);
    cr_expect(m.find("duet_stored_bytes") != std::string::npos);
    close(held);
}

Test(e2e_http, options_answers_204_with_allow_and_no_length) {
    boot();
    std::string r = t::http(g_srv.http_port, req("OPTIONS", "/"), true);
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    std::string allow = t::header_of(r, "Allow");
    cr_expect(allow.find("GET") != std::string::npos && allow.find("HEAD") != std::string::npos,
              "Allow: %s", allow.c_str());
    cr_expect_eq(t::header_of(r, "Content-Length"), "");
    cr_expect(!t::header_of(r, "Server").empty());
    r = t::http(g_srv.http_port, req("OPTIONS", "/files/a.txt"), true);
    cr_expect_eq(t::status_of(r), 204);
    allow = t::header_of(r, "Allow");
    cr_expect(allow.find("PUT") != std::string::npos && allow.find("DELETE") != std::string::npos,
              "Allow: %s", allow.c_str());
    r = t::http(g_srv.http_port, req("OPTIONS", "*"), true);
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
}

Test(e2e_http, known_route_with_wrong_method_is_405_with_allow) {
    boot();
    struct {
        const char* method;
        const char* path;
    } cases[] = {{"POST", "/"},
                 {"DELETE", "/healthz"},
                 {"PUT", "/metrics"},
                 {"POST", "/files"},
                 {"PATCH", "/files/a.txt"}};
    for (auto& c : cases) {
        std::string r = t::http(g_srv.http_port, req(c.method, c.path));
        cr_expect_eq(t::status_of(r), 405, "%s %s: %s", c.method, c.path, r.c_str());
        cr_expect(t::header_of(r, "Allow").find("GET") != std::string::npos, "%s %s: %s", c.method,
                  c.path, r.c_str());
        cr_expect(is_json_error(r), "%s", r.c_str());
    }
}

Test(e2e_http, unknown_method_is_501) {
    boot();
    std::string r = t::http(g_srv.http_port, req("BREW", "/"));
    cr_expect_eq(t::status_of(r), 501, "%s", r.c_str());
    cr_expect(is_json_error(r), "%s", r.c_str());
}

Test(e2e_http, unknown_path_is_404_json) {
    boot();
    for (const char* path : {"/nope", "/healthz/x", "/filesx", "/metrics.txt"}) {
        std::string r = t::http(g_srv.http_port, get(path));
        cr_expect_eq(t::status_of(r), 404, "%s: %s", path, r.c_str());
        cr_expect(is_json_error(r), "%s", r.c_str());
        cr_expect_eq(t::header_of(r, "Content-Length"), std::to_string(t::body_of(r).size()));
    }
}

// ---- connection management ----

Test(e2e_http, http11_keeps_the_connection_alive) {
    boot();
    int fd = connect_http();
    for (int i = 0; i < 3; ++i) {
        t::send_all(fd, get("/healthz"));
        std::string r = t::read_response(fd);
        cr_assert_eq(t::status_of(r), 200, "request %d: %s", i, r.c_str());
        cr_expect_eq(t::header_of(r, "Connection"), "");
    }
    cr_expect(!t::peer_closed(fd, 200), "closed a keep-alive connection");
    close(fd);
}

Test(e2e_http, http10_closes_by_default) {
    boot();
    int fd = connect_http();
    t::send_all(fd, "GET /healthz HTTP/1.0\r\n\r\n");
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::body_of(r), "ok\n");
    cr_expect(t::peer_closed(fd, 3000));
    close(fd);
}

Test(e2e_http, http10_keeps_alive_when_asked) {
    boot();
    int fd = connect_http();
    for (int i = 0; i < 2; ++i) {
        t::send_all(fd, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        std::string r = t::read_response(fd);
        cr_assert_eq(t::status_of(r), 200, "request %d: %s", i, r.c_str());
        cr_expect_eq(t::header_of(r, "Connection"), "keep-alive");
    }
    cr_expect(!t::peer_closed(fd, 200));
    close(fd);
}

Test(e2e_http, connection_close_is_honoured) {
    boot();
    int fd = connect_http();
    t::send_all(fd, get("/", "Connection: close\r\n"));
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 200);
    cr_expect_eq(t::header_of(r, "Connection"), "close");
    cr_expect(t::peer_closed(fd, 3000));
    close(fd);
}

Test(e2e_http, pipelined_requests_are_answered_in_order_on_one_connection) {
    boot();
    int fd = connect_http();
    t::send_all(fd, get("/healthz") + get("/nope") + req("HEAD", "/") + get("/") + get("/healthz"));
    std::string a = t::read_response(fd);
    std::string b = t::read_response(fd);
    std::string c = t::read_response(fd, true);
    std::string d = t::read_response(fd);
    std::string e = t::read_response(fd);
    cr_expect_eq(t::status_of(a), 200);
    cr_expect_eq(t::body_of(a), "ok\n");
    cr_expect_eq(t::status_of(b), 404, "%s", b.c_str());
    cr_expect_eq(t::status_of(c), 200);
    cr_expect_eq(t::body_of(c), "");
    cr_expect(t::body_of(d).find("\"name\":\"duet\"") != std::string::npos, "%s", d.c_str());
    cr_expect_eq(t::body_of(e), "ok\n");
    cr_expect(!t::peer_closed(fd, 200));
    close(fd);
}

Test(e2e_http, many_pipelined_requests_all_answered) {
    boot();
    std::string batch;
    const int n = 200;
    for (int i = 0; i < n; ++i) batch += get(i % 2 ? "/healthz" : "/nope");
    int fd = connect_http();
    t::send_all(fd, batch);
    for (int i = 0; i < n; ++i) {
        std::string r = t::read_response(fd, false, 5000);
        cr_assert_eq(t::status_of(r), i % 2 ? 200 : 404, "response %d: %s", i, r.c_str());
    }
    close(fd);
}

Test(e2e_http, bare_lf_request_typed_like_nc_is_answered) {
    boot();
    int fd = connect_http();
    t::send_all(fd, "GET / HTTP/1.1\nHost: x\n\n");
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    t::send_all(fd, "GET /healthz HTTP/1.1\nHost: x\r\n\n");
    r = t::read_response(fd);
    cr_expect_eq(t::body_of(r), "ok\n", "%s", r.c_str());
    close(fd);
}

Test(e2e_http, body_sent_to_get_is_skipped_before_the_next_request) {
    boot();
    int fd = connect_http();
    t::send_all(
        fd, get("/", "Content-Length: 22\r\n") + "GET /nope HTTP/1.1\r\n\r\n" + get("/healthz"));
    std::string a = t::read_response(fd);
    std::string b = t::read_response(fd);
    cr_expect_eq(t::status_of(a), 200, "%s", a.c_str());
    cr_expect_eq(t::body_of(b), "ok\n", "body was parsed as a request: %s", b.c_str());
    // A chunked body is skipped too.
    t::send_all(fd, get("/", "Transfer-Encoding: chunked\r\n") + "5\r\nGET /\r\n0\r\n\r\n" +
                        get("/healthz"));
    a = t::read_response(fd);
    b = t::read_response(fd);
    cr_expect_eq(t::status_of(a), 200, "%s", a.c_str());
    cr_expect_eq(t::body_of(b), "ok\n", "%s", b.c_str());
    close(fd);
}

Test(e2e_http, body_sent_in_pieces_to_get_is_skipped) {
    boot();
    int fd = connect_http();
    t::send_all(fd, get("/", "Content-Length: 10\r\n") + "01234");
    std::string a = t::read_response(fd);
    cr_expect_eq(t::status_of(a), 200, "%s", a.c_str());
    t::send_all(fd, "56789" + get("/healthz"));
    std::string b = t::read_response(fd);
    cr_expect_eq(t::body_of(b), "ok\n", "%s", b.c_str());
    close(fd);
}

// ---- protocol errors: 400 and close ----

Test(e2e_http, malformed_heads_are_400_and_close) {
    boot();
    const std::string rl = "GET / HTTP/1.1\r\n";
    struct {
        const char* what;
        std::string raw;
    } cases[] = {
        {"missing Host in 1.1", "GET / HTTP/1.1\r\n\r\n"},
        {"repeated Host", rl + "Host: a\r\nHost: a\r\n\r\n"},
        {"field without colon", rl + "Host: x\r\nNoColonHere\r\n\r\n"},
        {"space before colon", rl + "Host: x\r\nX-A : 1\r\n\r\n"},
        {"space before colon in Host", rl + "Host : x\r\n\r\n"},
        {"obs-fold", rl + "Host: x\r\nX-A: 1\r\n  folded\r\n\r\n"},
        {"obs-fold with tab", rl + "Host: x\r\nX-A: 1\r\n\tfolded\r\n\r\n"},
        {"bare CR in field", rl + "Host: x\r\nX-A: 1\rX-B: 2\r\n\r\n"},
        {"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"NUL in field", rl + "Host: x\r\nX-A: a" + std::string(1, '\0') + "b\r\n\r\n"},
        {"control byte in field", rl + "Host: x\r\nX-A: a\x01"
                                       "b\r\n\r\n"},
        {"garbage request line", "HELLO\r\n\r\n"},
    };
    for (auto& c : cases) expect_fatal(c.what, c.raw, 400);
}

Test(e2e_http, bad_content_length_and_framing_are_400_and_close) {
    boot();
    const std::string put = "PUT /files/f.txt HTTP/1.1\r\nHost: x\r\n";
    struct {
        const char* what;
        std::string raw;
    } cases[] = {
        {"CL with plus sign", put + "Content-Length: +5\r\n\r\nhello"},
        {"CL with minus sign", put + "Content-Length: -5\r\n\r\nhello"},
        {"CL list", put + "Content-Length: 5, 5\r\n\r\nhello"},
        {"CL not digits", put + "Content-Length: 5x\r\n\r\nhello"},
        {"CL repeated differently", put + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello"},
        {"CL with TE", put + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n0\r\n\r\n"},
        {"chunk size not hex", put + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
        {"chunk size with sign", put + "Transfer-Encoding: chunked\r\n\r\n"
                                       "+5\r\nhello\r\n0\r\n\r\n"},
        {"chunk size overflow", put + "Transfer-Encoding: chunked\r\n\r\n"
                                      "100000000000000005\r\nhello\r\n0\r\n\r\n"},
        {"bare LF in chunked framing", put + "Transfer-Encoding: chunked\r\n\r\n"
                                             "5\nhello\r\n0\r\n\r\n"},
        {"bare CR in chunked framing", put + "Transfer-Encoding: chunked\r\n\r\n"
                                             "5\rhello\r\n0\r\n\r\n"},
        {"chunk data longer than size", put + "Transfer-Encoding: chunked\r\n\r\n"
                                              "3\r\nhello\r\n0\r\n\r\n"},
        {"unbounded chunk extension", put + "Transfer-Encoding: chunked\r\n\r\n5;x=" +
                                          std::string(20000, 'a') + "\r\nhello\r\n0\r\n\r\n"},
        {"unbounded trailers", put + "Transfer-Encoding: chunked\r\n\r\n0\r\n" +
                                   [] {
                                       std::string s;
                                       for (int i = 0; i < 1000; ++i)
                                           s += "X-T" + std::to_string(i) + ": 0123456789\r\n";
                                       return s;
                                   }() +
                                   "\r\n"},
    };
    for (auto& c : cases) expect_fatal(c.what, c.raw, 400);
    // None of those bodies was stored.
    std::string r = t::http(g_srv.http_port, get("/files/f.txt"));
    cr_expect_eq(t::status_of(r), 404, "%s", r.c_str());
}

Test(e2e_http, unsupported_transfer_coding_is_501_and_close) {
    boot();
    const std::string put = "PUT /files/f.txt HTTP/1.1\r\nHost: x\r\n";
    expect_fatal("TE gzip", put + "Transfer-Encoding: gzip\r\n\r\nxxxx", 501);
    expect_fatal("TE gzip, chunked", put + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                 501);
}

Test(e2e_http, other_http_versions_are_505_and_close) {
    boot();
    expect_fatal("HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    expect_fatal("HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505);
    expect_fatal("HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505);
}

Test(e2e_http, long_request_line_is_414_and_close) {
    boot();
    expect_fatal("9000-byte target", get("/" + std::string(9000, 'a')), 414);
    // Sent without its end: the limit is enforced before the line is complete.
    expect_fatal("unterminated long line", "GET /" + std::string(9000, 'a'), 414);
}

Test(e2e_http, large_or_numerous_headers_are_431_and_close) {
    boot();
    std::string big;
    for (int i = 0; i < 40; ++i)
        big += "X-Big-" + std::to_string(i) + ": " + std::string(1024, 'v') + "\r\n";
    expect_fatal("40 KiB of headers", get("/", big), 431);
    expect_fatal("40 KiB field without its end",
                 "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(40960, 'v'), 431);
    std::string many;
    for (int i = 0; i < 101; ++i) many += "X-F" + std::to_string(i) + ": 1\r\n";
    expect_fatal("101 fields (with Host: 102)", get("/", many), 431);
    // 99 extra fields plus Host is exactly 100: allowed.
    std::string ok;
    for (int i = 0; i < 99; ++i) ok += "X-F" + std::to_string(i) + ": 1\r\n";
    std::string r = t::http(g_srv.http_port, get("/healthz", ok));
    cr_expect_eq(t::status_of(r), 200, "100 fields: %s", r.c_str());
}

Test(e2e_http, server_keeps_serving_after_protocol_errors) {
    boot();
    expect_fatal("missing Host", "GET / HTTP/1.1\r\n\r\n", 400);
    std::string r = t::http(g_srv.http_port, get("/healthz"));
    cr_expect_eq(t::body_of(r), "ok\n");
}

// ---- timeouts and limits ----

Test(e2e_http, partial_head_gets_408_after_header_timeout_and_close) {
    boot({"--header-timeout", "1"});
    int fd = connect_http();
    std::int64_t t0 = t::now_ms();
    t::send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n");
    std::string r = t::read_response(fd, false, 4000);
    std::int64_t took = t::now_ms() - t0;
    cr_expect_eq(t::status_of(r), 408, "%s", r.c_str());
    cr_expect(is_json_error(r), "%s", r.c_str());
    cr_expect(took >= 900 && took < 3500, "408 after %lld ms", static_cast<long long>(took));
    cr_expect(t::peer_closed(fd, 2000));
    close(fd);
}

Test(e2e_http, header_timeout_counts_the_whole_head_not_each_byte) {
    boot({"--header-timeout", "1"});
    int fd = connect_http();
    std::int64_t t0 = t::now_ms();
    // Dribble a byte every 100 ms: progress, but the head is not complete within 1 s.
    std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(30, 'a');
    std::string r;
    for (char c : head) {
        if (!t::send_all(fd, std::string(1, c))) break;
        usleep(100 * 1000);  // pacing the client, not waiting for the server
        if (t::now_ms() - t0 > 1500) break;
    }
    r = t::read_response(fd, false, 3000);
    cr_expect_eq(t::status_of(r), 408, "%s", r.c_str());
    close(fd);
}

Test(e2e_http, idle_keep_alive_connection_is_closed_after_idle_timeout) {
    boot({"--idle-timeout", "1"});
    int fd = connect_http();
    t::send_all(fd, get("/healthz"));
    std::string r = t::read_response(fd);
    cr_assert_eq(t::status_of(r), 200);
    std::int64_t t0 = t::now_ms();
    cr_expect(t::peer_closed(fd, 4000), "idle connection still open");
    std::int64_t took = t::now_ms() - t0;
    cr_expect(took >= 700, "closed after %lld ms", static_cast<long long>(took));
    close(fd);
}

Test(e2e_http, third_connection_waits_for_a_slot_at_max_conns_2) {
    boot({"--max-conns", "2"});
    int a = connect_http();
    int b = connect_http();
    for (int fd : {a, b}) {
        t::send_all(fd, get("/healthz"));
        cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    }
    int c = connect_http();  // sits in the backlog
    t::send_all(c, get("/healthz"));
    std::string r = t::read_response(c, false, 700);
    cr_expect_eq(r, "", "served over --max-conns: %s", r.c_str());
    // The two served connections still work.
    t::send_all(b, get("/"));
    cr_expect_eq(t::status_of(t::read_response(b)), 200);
    close(a);
    r = t::read_response(c, false, 5000);
    cr_expect_eq(t::status_of(r), 200, "not served after a slot freed: %s", r.c_str());
    cr_expect_eq(t::body_of(r), "ok\n");
    close(b);
    close(c);
}

// ---- command line ----

Test(e2e_http, bad_options_exit_2_with_one_line_naming_the_option) {
    struct {
        const char* args;
        const char* names;
    } cases[] = {
        {"--grace abc", "--grace"},
        {"--http nonsense", "--http"},
        {"--bogus", "--bogus"},
        {"--max-conns -1", "--max-conns"},
        {"--idle-timeout x", "--idle-timeout"},
        {"--files 127.0.0.1:99999", "--files"},
        {"--grace", "--grace"},
    };
    for (auto& c : cases) {
        int status = -1;
        std::string out = t::sh(duet_cmd(std::string(c.args) + " 2>&1 </dev/null"), &status);
        cr_expect_eq(status, 2, "%s: exit %d: %s", c.args, status, out.c_str());
        cr_expect(out.find(c.names) != std::string::npos, "%s: %s", c.args, out.c_str());
        cr_expect_eq(count_lines(out), 1u, "%s: %s", c.args, out.c_str());
    }
}

Test(e2e_http, version_and_help_exit_0) {
    int status = -1;
    std::string out = t::sh(duet_cmd("--version 2>/dev/null"), &status);
    cr_expect_eq(status, 0);
    cr_expect(out.find("duet") != std::string::npos, "%s", out.c_str());
    out = t::sh(duet_cmd("--help 2>/dev/null"), &status);
    cr_expect_eq(status, 0);
    cr_expect(out.find("--http") != std::string::npos && out.find("--check") != std::string::npos,
              "%s", out.c_str());
}

Test(e2e_http, check_prints_ok_while_another_duet_holds_the_ports) {
    boot();
    int status = -1;
    std::string args = "--check --http 127.0.0.1:" + std::to_string(g_srv.http_port) +
                       " --files 127.0.0.1:" + std::to_string(g_srv.files_port) + " --data '" +
                       g_srv.data_dir + "' 2>/dev/null";
    std::string out = t::sh(duet_cmd(args), &status);
    cr_expect_eq(status, 0, "exit %d", status);
    cr_expect_eq(out, "ok\n");
    cr_expect_eq(t::status_of(t::http(g_srv.http_port, get("/healthz"))), 200);
}

// --check does everything a start does but bind: an unusable store or two clashing addresses
// fail it with exit 2 and one line, exactly as a start would fail.
Test(e2e_http, check_fails_on_an_unusable_store_or_clashing_addresses) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    struct Case {
        std::string args, says;
    } cases[] = {
        {"--check --data /proc/nope", "/proc/nope"},
        {"--check --data /proc/self", "cannot write in store directory /proc/self"},
        {"--check --http 127.0.0.1:8123 --files 127.0.0.1:8123 --data '" + dir + "/d'",
         "--http and --files name the same address"},
        // A start with the same address fails the same way, before binding anything.
        {"--http 127.0.0.1:0 --files 127.0.0.1:0 --data /proc/nope", "/proc/nope"},
        {"--http 127.0.0.1:8123 --files localhost:8123 --data '" + dir + "/d'",
         "--http and --files name the same address"},
    };
    for (const Case& c : cases) {
        int status = -1;
        std::string out = t::sh(duet_cmd(c.args + " 2>&1 </dev/null"), &status);
        cr_expect_eq(status, 2, "%s: exit %d: %s", c.args.c_str(), status, out.c_str());
        cr_expect(out.find(c.says) != std::string::npos, "%s: %s", c.args.c_str(), out.c_str());
        cr_expect(out.find("pid") == std::string::npos, "%s: %s", c.args.c_str(), out.c_str());
        cr_expect_eq(count_lines(out), 1u, "%s: %s", c.args.c_str(), out.c_str());
    }
    cr_expect(!std::filesystem::exists(dir + "/d"), "a failed check or start left the store");
}

Test(e2e_http, second_copy_on_the_same_port_exits_3_naming_the_first) {
    boot();
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    int status = -1;
    std::string args = "--http 127.0.0.1:" + std::to_string(g_srv.http_port) +
                       " --files 127.0.0.1:0 --data '" + dir + "/data' 2>&1 </dev/null";
    std::string out = t::sh(duet_cmd(args), &status);
    cr_expect_eq(status, 3, "exit %d: %s", status, out.c_str());
    cr_expect(out.find("address already in use") != std::string::npos, "%s", out.c_str());
    cr_expect(out.find("pid " + std::to_string(g_srv.pid)) != std::string::npos, "%s", out.c_str());
    cr_expect(out.find(std::to_string(g_srv.http_port)) != std::string::npos, "%s", out.c_str());
    cr_expect_eq(count_lines(out), 1u, "%s", out.c_str());
    std::string r = t::http(g_srv.http_port, get("/"));
    cr_expect_eq(t::status_of(r), 200, "first copy harmed: %s", r.c_str());
}

Test(e2e_http, sigterm_on_idle_server_exits_0) {
    boot();
    cr_expect_eq(t::status_of(t::http(g_srv.http_port, get("/healthz"))), 200);
    cr_expect_eq(t::stop(g_srv, SIGTERM, 5000), 0);
}

Test(e2e_http, header_timeout_spares_an_idle_keep_alive_connection) {
    boot({"--header-timeout", "1", "--idle-timeout", "5"});
    int fd = connect_http();
    t::send_all(fd, get("/healthz"));
    cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    // Between requests no head is under way: the header timeout must not fire.
    cr_expect(!t::peer_closed(fd, 1600), "idle keep-alive connection got the header timeout");
    t::send_all(fd, get("/healthz"));
    cr_expect_eq(t::body_of(t::read_response(fd)), "ok\n");
    close(fd);
}

Test(e2e_http, partial_head_after_a_pipelined_request_gets_408) {
    boot({"--header-timeout", "1"});
    int fd = connect_http();
    t::send_all(fd, get("/healthz") + "GET / HTTP/1.1\r\nHo");
    cr_expect_eq(t::body_of(t::read_response(fd)), "ok\n");
    std::string r = t::read_response(fd, false, 4000);
    cr_expect_eq(t::status_of(r), 408, "%s", r.c_str());
    cr_expect(t::peer_closed(fd, 2000));
    close(fd);
}

Test(e2e_http, graceful_stop_closes_idle_connections_and_finishes_a_busy_one) {
    boot();
    int idle = connect_http();
    t::send_all(idle, get("/healthz"));
    cr_assert_eq(t::status_of(t::read_response(idle)), 200);
    int busy = connect_http();
    t::send_all(busy, "PUT /files/up.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    // A round trip on another connection after the send lets the loop read the upload's head.
    cr_assert_eq(t::status_of(t::http(g_srv.http_port, get("/healthz"))), 200);
    kill(g_srv.pid, SIGTERM);
    cr_expect(t::peer_closed(idle, 2000), "idle connection not closed at stop");
    t::send_all(busy, "world");
    std::string r = t::read_response(busy, false, 5000);
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Connection"), "close");
    cr_expect(t::peer_closed(busy, 3000));
    cr_expect_eq(t::wait_exit(g_srv, 5000), 0);
    cr_expect_eq(t::read_file(g_srv.data_dir + "/up.txt"), "helloworld");
    close(idle);
    close(busy);
}

Test(e2e_http, pipelined_requests_then_half_close_are_all_answered) {
    boot();
    // What `printf ... | nc -N` does: send everything, shut down writing, read until close.
    std::string batch;
    for (int i = 0; i < 50; ++i) batch += get("/");
    batch += get("/healthz");
    int fd = connect_http();
    t::send_all(fd, batch);
    shutdown(fd, SHUT_WR);
    std::string all = t::read_all(fd, 5000);
    std::size_t count = 0;
    for (std::size_t at = 0; (at = all.find("HTTP/1.1 200 OK", at)) != std::string::npos; ++at)
        ++count;
    cr_expect_eq(count, 51u, "%zu answers", count);
    cr_expect(all.size() > 3 && all.substr(all.size() - 3) == "ok\n", "last answer missing");
    close(fd);
}

// The timeout clocks start when the connection arrives, not at the loop's previous wakeup: a
// connection accepted late in a long epoll_wait must still get its whole allowance.
Test(e2e_http, header_timeout_counts_from_accept_even_after_the_loop_slept) {
    boot({"--header-timeout", "1"});
    usleep(800 * 1000);  // let the idle loop sit in epoll_wait (it wakes once a second)
    int fd = connect_http();
    std::int64_t t0 = t::now_ms();
    t::send_all(fd, "GET / HTTP/1.1\r\n");
    std::string r = t::read_response(fd, false, 4000);
    std::int64_t took = t::now_ms() - t0;
    cr_expect_eq(t::status_of(r), 408, "%s", r.c_str());
    cr_expect(took >= 900, "408 after only %lld ms", static_cast<long long>(took));
    close(fd);
}

Test(e2e_http, idle_timeout_counts_from_the_last_progress_even_after_the_loop_slept) {
    boot({"--idle-timeout", "1"});
    int fd = connect_http();
    usleep(800 * 1000);  // the loop sleeps; our next request is progress made late in that wait
    t::send_all(fd, get("/healthz"));
    cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    std::int64_t t0 = t::now_ms();
    cr_expect(t::peer_closed(fd, 4000));
    std::int64_t took = t::now_ms() - t0;
    cr_expect(took >= 900, "idle close after only %lld ms", static_cast<long long>(took));
    close(fd);
}
