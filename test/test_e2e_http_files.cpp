// Black-box tests of the /files routes over raw sockets and with the real curl: upload, download,
// ranges, validators, digests, limits, token, hostile names, symlinks, and uploads cut short.
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;  // the server under test, see t::boot
std::string g_tmp;           // scratch directory for curl's files

using t::teardown;

void boot(std::vector<std::string> args = {}) {
    g_tmp = t::boot(std::move(args));
}

std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(g_srv.http_port) + path;
}

std::string request(const std::string& method, const std::string& path,
                    const std::string& fields = "", const std::string& body = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n" + body;
}

std::string put_request(const std::string& name, const std::string& body,
                        const std::string& fields = "") {
    return request("PUT", "/files/" + name,
                   "Content-Length: " + std::to_string(body.size()) + "\r\n" + fields, body);
}

std::string http(const std::string& raw, bool head_only = false) {
    return t::http(g_srv.http_port, raw, head_only);
}

std::string put(const std::string& name, const std::string& body, const std::string& fields = "") {
    return http(put_request(name, body, fields));
}

std::string get(const std::string& name, const std::string& fields = "") {
    return http(request("GET", "/files/" + name, fields));
}

// The value of a Prometheus sample line starting with `prefix`, or -1.
long metric(const std::string& prefix) {
    std::string m = t::body_of(http(request("GET", "/metrics")));
    std::size_t at = m.find("\n" + prefix + " ");
    if (at == std::string::npos) return -1;
    return std::atol(m.c_str() + at + prefix.size() + 2);
}

// Waits (bounded) until the server has counted `n` failed uploads.
bool wait_failed_uploads(long n) {
    std::int64_t deadline = t::now_ms() + 5000;
    while (t::now_ms() < deadline) {
        if (metric("duet_uploads_total{result=\"failed\"}") >= n) return true;
        usleep(20 * 1000);
    }
    return false;
}

using t::is_json_error;

// Everything in the store but duet's bookkeeping: a leaked temporary file counts.
std::vector<std::string> visible_files() {
    return t::store_listing(g_srv.data_dir);
}

int connect_http() {
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0, "connect failed");
    return fd;
}

// Runs curl; returns its stdout, with the exit status in `status`.
std::string curl(const std::string& args, int* status = nullptr) {
    return t::sh("curl -sS --max-time 20 " + args + " 2>&1", status);
}

}  // namespace

TestSuite(e2e_http_files, .fini = teardown, .timeout = 40);

// ---- upload, download, list, delete ----

Test(e2e_http_files, put_new_is_201_with_location_then_replace_is_200) {
    boot();
    std::string data = "hello, duet\n";
    std::string r = put("greeting.txt", data);
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Location"), "/files/greeting.txt");
    cr_expect_eq(t::header_of(r, "Content-Type"), "application/json");
    std::string body = t::body_of(r);
    cr_expect(body.find("\"name\":\"greeting.txt\"") != std::string::npos, "%s", body.c_str());
    cr_expect(body.find("\"size\":12") != std::string::npos, "%s", body.c_str());
    cr_expect(body.find("\"sha256\":\"" + t::sha256_hex(data) + "\"") != std::string::npos, "%s",
              body.c_str());
    r = put("greeting.txt", "second version");
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Location"), "");
    cr_expect(t::body_of(r).find("\"size\":14") != std::string::npos, "%s", r.c_str());
    cr_expect_eq(t::body_of(get("greeting.txt")), "second version");
    cr_expect_eq(t::read_file(g_srv.data_dir + "/greeting.txt"), "second version");
}

Test(e2e_http_files, get_returns_bytes_with_validators_and_digest) {
    boot();
    std::string data = t::random_bytes(100000, 7);
    cr_assert_eq(t::status_of(put("blob.bin", data)), 201);
    std::string r = get("blob.bin");
    cr_assert_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect(t::body_of(r) == data, "downloaded bytes differ");
    cr_expect_eq(t::header_of(r, "Content-Length"), "100000");
    cr_expect_eq(t::header_of(r, "Content-Type"), "application/octet-stream");
    cr_expect_eq(t::header_of(r, "ETag"), "\"" + t::sha256_hex(data) + "\"");
    cr_expect_eq(t::header_of(r, "Repr-Digest"), "sha-256=:" + t::sha256_b64(data) + ":");
    cr_expect_eq(t::header_of(r, "Accept-Ranges"), "bytes");
    std::string lm = t::header_of(r, "Last-Modified");
    cr_expect(lm.size() == 29 && lm.substr(26) == "GMT", "Last-Modified: %s", lm.c_str());
}

Test(e2e_http_files, head_file_has_headers_and_no_body) {
    boot();
    cr_assert_eq(t::status_of(put("h.txt", "0123456789")), 201);
    int fd = connect_http();
    t::send_all(fd, request("HEAD", "/files/h.txt") + request("GET", "/healthz"));
    std::string h = t::read_response(fd, true);
    cr_expect_eq(t::status_of(h), 200, "%s", h.c_str());
    cr_expect_eq(t::header_of(h, "Content-Length"), "10");
    cr_expect(!t::header_of(h, "ETag").empty());
    std::string next = t::read_response(fd);
    cr_expect_eq(t::body_of(next), "ok\n", "HEAD sent a body: %s", next.c_str());
    close(fd);
}

Test(e2e_http_files, list_is_json_sorted_by_name_with_fields) {
    boot();
    for (const char* n : {"zeta.txt", "alpha.txt", "Mid-1.txt", "beta_2.txt"})
        cr_assert_eq(t::status_of(put(n, n)), 201);
    std::string r = http(request("GET", "/files"));
    cr_assert_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Content-Type"), "application/json");
    std::string b = t::body_of(r);
    cr_expect(b.front() == '[' && b.find(']') != std::string::npos, "%s", b.c_str());
    std::size_t m = b.find("\"Mid-1.txt\""), a = b.find("\"alpha.txt\""),
                be = b.find("\"beta_2.txt\""), z = b.find("\"zeta.txt\"");
    cr_expect(m != std::string::npos && a != std::string::npos && be != std::string::npos &&
                  z != std::string::npos,
              "%s", b.c_str());
    cr_expect(m < a && a < be && be < z, "not sorted by name: %s", b.c_str());
    std::string entry = "{\"name\":\"alpha.txt\",\"size\":9,\"sha256\":\"" +
                        t::sha256_hex("alpha.txt") + "\",\"mtime\":";
    cr_expect(b.find(entry) != std::string::npos, "%s", b.c_str());
    std::string empty_list = t::body_of(http(request("HEAD", "/files"), true));
    cr_expect_eq(empty_list, "");
}

Test(e2e_http_files, empty_store_lists_empty_array) {
    boot();
    std::string b = t::body_of(http(request("GET", "/files")));
    cr_expect(b == "[]" || b == "[]\n", "%s", b.c_str());
}

Test(e2e_http_files, delete_is_204_then_404) {
    boot();
    cr_assert_eq(t::status_of(put("gone.txt", "x")), 201);
    std::string r = http(request("DELETE", "/files/gone.txt"), true);
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_expect_eq(t::status_of(get("gone.txt")), 404);
    r = http(request("DELETE", "/files/gone.txt"));
    cr_expect_eq(t::status_of(r), 404, "%s", r.c_str());
    cr_expect(is_json_error(r));
    cr_expect(visible_files().empty());
}

Test(e2e_http_files, get_missing_is_404_json) {
    boot();
    std::string r = get("missing.txt");
    cr_expect_eq(t::status_of(r), 404, "%s", r.c_str());
    cr_expect(is_json_error(r), "%s", r.c_str());
}

Test(e2e_http_files, file_dropped_in_by_hand_is_served) {
    boot();
    t::write_file(g_srv.data_dir + "/manual.txt", "by hand\n");
    std::string r = get("manual.txt");
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::body_of(r), "by hand\n");
    cr_expect_eq(t::header_of(r, "ETag"), "\"" + t::sha256_hex("by hand\n") + "\"");
}

// ---- curl ----

Test(e2e_http_files, curl_uploads_5mib_with_100_continue_and_downloads_it_back) {
    boot();
    std::string src = g_tmp + "/big.src", dst = g_tmp + "/big.dst";
    std::string data = t::random_bytes(5 << 20, 3);
    t::write_file(src, data);
    int st = -1;
    std::string out = curl("-v -H 'Expect: 100-continue' -T '" + src + "' " +
                               url("/files/big.bin") + " -o /dev/null -w 'code=%{http_code}\\n'",
                           &st);
    cr_expect_eq(st, 0, "%s", out.c_str());
    cr_expect(out.find("code=201") != std::string::npos, "%s", out.c_str());
    cr_expect(out.find("HTTP/1.1 100 Continue") != std::string::npos, "no 100: %s", out.c_str());
    out = curl("-o '" + dst + "' -w '%{http_code}' " + url("/files/big.bin"), &st);
    cr_expect_eq(out, "200");
    std::string got = t::read_file(dst);
    cr_expect_eq(got.size(), data.size());
    cr_expect(got == data, "downloaded bytes differ");
}

Test(e2e_http_files, curl_ranges_give_206_with_content_range) {
    boot();
    std::string data = t::random_bytes(1000, 5);
    cr_assert_eq(t::status_of(put("r.bin", data)), 201);
    struct {
        const char* range;
        std::size_t from, len;
    } cases[] = {{"0-99", 0, 100}, {"100-", 100, 900}, {"-50", 950, 50}, {"990-5000", 990, 10}};
    for (auto& c : cases) {
        std::string body = g_tmp + "/range.out", hdr = g_tmp + "/range.hdr";
        int st = -1;
        std::string code = curl("-r " + std::string(c.range) + " -D '" + hdr + "' -o '" + body +
                                    "' -w '%{http_code}' " + url("/files/r.bin"),
                                &st);
        cr_expect_eq(code, "206", "-r %s: %s", c.range, code.c_str());
        std::string h = t::read_file(hdr);
        char want[64];
        std::snprintf(want, sizeof want, "bytes %zu-%zu/1000", c.from, c.from + c.len - 1);
        cr_expect_eq(t::header_of(h, "Content-Range"), std::string(want), "-r %s: %s", c.range,
                     h.c_str());
        cr_expect_eq(t::header_of(h, "Content-Length"), std::to_string(c.len));
        cr_expect(t::read_file(body) == data.substr(c.from, c.len), "-r %s: wrong bytes", c.range);
    }
}

Test(e2e_http_files, range_past_the_end_is_416_with_star_content_range) {
    boot();
    cr_assert_eq(t::status_of(put("s.bin", std::string(100, 's'))), 201);
    std::string r = get("s.bin", "Range: bytes=100-200\r\n");
    cr_expect_eq(t::status_of(r), 416, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Content-Range"), "bytes */100");
    cr_expect(is_json_error(r), "%s", r.c_str());
    // The connection stays usable after a 416.
    int fd = connect_http();
    t::send_all(fd, request("GET", "/files/s.bin", "Range: bytes=500-\r\n") +
                        request("GET", "/files/s.bin", "Range: bytes=0-0\r\n"));
    cr_expect_eq(t::status_of(t::read_response(fd)), 416);
    std::string one = t::read_response(fd);
    cr_expect_eq(t::status_of(one), 206, "%s", one.c_str());
    cr_expect_eq(t::body_of(one), "s");
    close(fd);
}

Test(e2e_http_files, if_none_match_with_the_etag_is_304_without_body) {
    boot();
    cr_assert_eq(t::status_of(put("e.txt", "etag me")), 201);
    std::string etag = t::header_of(get("e.txt"), "ETag");
    cr_assert(!etag.empty());
    int fd = connect_http();
    t::send_all(fd, request("GET", "/files/e.txt", "If-None-Match: " + etag + "\r\n") +
                        request("GET", "/healthz"));
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 304, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "ETag"), etag);
    std::string next = t::read_response(fd);
    cr_expect_eq(t::body_of(next), "ok\n", "304 carried a body: %s", next.c_str());
    close(fd);
    for (std::string inm : {"W/" + etag, "\"0000\", " + etag, std::string("*")}) {
        r = get("e.txt", "If-None-Match: " + inm + "\r\n");
        cr_expect_eq(t::status_of(r), 304, "If-None-Match: %s: %s", inm.c_str(), r.c_str());
    }
    r = get("e.txt", "If-None-Match: \"0000\"\r\n");
    cr_expect_eq(t::status_of(r), 200, "other etag: %s", r.c_str());
}

// ---- upload framing and checks ----

Test(e2e_http_files, chunked_upload_with_extensions_and_trailer_is_stored) {
    boot();
    std::string body = "5;ext=1\r\nhello\r\n6;a;b=\"q x\"\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
    int fd = connect_http();
    t::send_all(fd, request("PUT", "/files/chunked.txt", "Transfer-Encoding: chunked\r\n", body) +
                        request("GET", "/files/chunked.txt"));
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect(t::body_of(r).find("\"size\":11") != std::string::npos, "%s", r.c_str());
    std::string g = t::read_response(fd);
    cr_expect_eq(t::body_of(g), "hello world", "%s", g.c_str());
    close(fd);
}

Test(e2e_http_files, chunked_upload_sent_byte_by_byte_is_stored) {
    boot();
    std::string body = "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
    int fd = connect_http();
    t::send_all(fd, request("PUT", "/files/slow.txt", "Transfer-Encoding: chunked\r\n"));
    for (char c : body) t::send_all(fd, std::string(1, c));
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    close(fd);
    cr_expect_eq(t::body_of(get("slow.txt")), "abc0123456789");
}

Test(e2e_http_files, matching_repr_digest_is_stored) {
    boot();
    std::string data = "digest checked";
    std::string r = put("d.txt", data, "Repr-Digest: sha-256=:" + t::sha256_b64(data) + ":\r\n");
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::body_of(get("d.txt")), data);
    r = put("d2.txt", data, "Content-Digest: sha-256=:" + t::sha256_b64(data) + ":\r\n");
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
}

Test(e2e_http_files, mismatching_repr_digest_is_400_and_nothing_stored) {
    boot();
    std::string r = put("bad.txt", "the real body",
                        "Repr-Digest: sha-256=:" + t::sha256_b64("another body") + ":\r\n");
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect(is_json_error(r), "%s", r.c_str());
    cr_expect_eq(t::status_of(get("bad.txt")), 404);
    cr_expect(visible_files().empty(), "a file appeared");
    // A mismatch does not clobber an existing file either.
    cr_assert_eq(t::status_of(put("keep.txt", "old")), 201);
    r = put("keep.txt", "new", "Content-Digest: sha-256=:" + t::sha256_b64("xyz") + ":\r\n");
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect_eq(t::body_of(get("keep.txt")), "old");
}

Test(e2e_http_files, if_none_match_star_on_existing_name_is_412) {
    boot();
    cr_assert_eq(t::status_of(put("once.txt", "first")), 201);
    std::string r = put("once.txt", "second", "If-None-Match: *\r\n");
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    cr_expect(is_json_error(r), "%s", r.c_str());
    cr_expect_eq(t::body_of(get("once.txt")), "first");
    r = put("fresh.txt", "new", "If-None-Match: *\r\n");
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
}

Test(e2e_http_files, content_length_over_max_upload_is_413_before_the_body) {
    boot({"--max-upload", "1000"});
    int fd = connect_http();
    // Only the head is sent: the answer must not wait for the 2000 bytes.
    t::send_all(fd, request("PUT", "/files/big.bin", "Content-Length: 2000\r\n"));
    std::string r = t::read_response(fd, false, 3000);
    cr_expect_eq(t::status_of(r), 413, "%s", r.c_str());
    cr_expect(is_json_error(r), "%s", r.c_str());
    cr_expect(t::peer_closed(fd, 4000));
    close(fd);
    // With Expect: 100-continue: no 100, the 413 at once.
    fd = connect_http();
    t::send_all(
        fd, request("PUT", "/files/big.bin", "Content-Length: 2000\r\nExpect: 100-continue\r\n"));
    r = t::read_response(fd, false, 3000);
    cr_expect_eq(t::status_of(r), 413, "got 100 or nothing: %s", r.c_str());
    cr_expect(t::peer_closed(fd, 4000));
    close(fd);
    // At the limit is fine.
    cr_expect_eq(t::status_of(put("ok.bin", std::string(1000, 'k'))), 201);
    cr_expect_eq(visible_files(), std::vector<std::string>{"ok.bin"});
}

Test(e2e_http_files, chunked_body_growing_past_max_upload_is_413_and_nothing_stored) {
    boot({"--max-upload", "1000"});
    std::string body;
    for (int i = 0; i < 3; ++i) body += "190\r\n" + std::string(400, 'c') + "\r\n";
    body += "0\r\n\r\n";
    int fd = connect_http();
    t::send_all(fd, request("PUT", "/files/grow.bin", "Transfer-Encoding: chunked\r\n", body));
    std::string r = t::read_response(fd, false, 3000);
    cr_expect_eq(t::status_of(r), 413, "%s", r.c_str());
    cr_expect(t::peer_closed(fd, 4000));
    close(fd);
    cr_expect_eq(t::status_of(get("grow.bin")), 404);
    cr_expect(visible_files().empty());
}

Test(e2e_http_files, expect_100_continue_gets_100_then_the_answer) {
    boot();
    int fd = connect_http();
    t::send_all(fd,
                request("PUT", "/files/cont.txt", "Content-Length: 5\r\nExpect: 100-continue\r\n"));
    std::string c = t::read_response(fd, true, 3000);
    cr_expect_eq(t::status_of(c), 100, "%s", c.c_str());
    t::send_all(fd, "abcde");
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    // The connection stays usable.
    t::send_all(fd, request("GET", "/files/cont.txt"));
    cr_expect_eq(t::body_of(t::read_response(fd)), "abcde");
    close(fd);
}

// ---- token ----

Test(e2e_http_files, token_guards_files_but_not_the_open_routes) {
    boot({"--token", "secret"});
    std::string r = http(request("GET", "/files"));
    cr_expect_eq(t::status_of(r), 401, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "WWW-Authenticate").rfind("Bearer", 0), 0u, "%s", r.c_str());
    cr_expect(is_json_error(r), "%s", r.c_str());
    r = http(request("GET", "/files", "Authorization: Bearer wrong\r\n"));
    cr_expect_eq(t::status_of(r), 401, "%s", r.c_str());
    r = http(request("GET", "/files", "Authorization: Bearer secre\r\n"));
    cr_expect_eq(t::status_of(r), 401, "prefix of the token: %s", r.c_str());
    r = http(request("GET", "/files", "Authorization: Bearer secrett\r\n"));
    cr_expect_eq(t::status_of(r), 401, "token plus a byte: %s", r.c_str());
    r = http(request("GET", "/files", "Authorization: Bearer secret\r\n"));
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    r = put("t.txt", "guarded");
    cr_expect_eq(t::status_of(r), 401, "%s", r.c_str());
    cr_expect(visible_files().empty());
    r = put("t.txt", "guarded", "Authorization: Bearer secret\r\n");
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::status_of(get("t.txt")), 401);
    cr_expect_eq(t::status_of(http(request("DELETE", "/files/t.txt"))), 401);
    cr_expect_eq(t::body_of(get("t.txt", "Authorization: Bearer secret\r\n")), "guarded");
    for (const char* open : {"/", "/healthz", "/metrics"})
        cr_expect_eq(t::status_of(http(request("GET", open))), 200, "%s", open);
}

Test(e2e_http_files, token_refusal_with_expect_100_sends_no_100) {
    boot({"--token", "secret"});
    int fd = connect_http();
    t::send_all(fd,
                request("PUT", "/files/x.txt", "Content-Length: 5\r\nExpect: 100-continue\r\n"));
    std::string r = t::read_response(fd, false, 3000);
    cr_expect_eq(t::status_of(r), 401, "%s", r.c_str());
    cr_expect(t::peer_closed(fd, 4000));
    close(fd);
}

// ---- names ----

Test(e2e_http_files, hostile_names_are_400_invalid_file_name) {
    boot();
    std::string long_name(256, 'n');
    // A raw ".." is a dot-segment, removed before routing (RFC 3986 §5.2.4): see
    // test_e2e_semantics. Encoded, it stays a name and is refused.
    std::vector<std::string> names = {"%2e%2e", "%2E%2E", ".hidden", "%2ehidden",  "a%2Fb",
                                      "a%2fb",  "a//b",   "%00",     "a%00b",      "%20a",
                                      "%zz",    "a%2",    "a%",      "%",          "a%5Cb",
                                      "a%FF",   "a%7F",   "a%C2%9F", "a%E2%81%A9", long_name};
    for (const std::string& name : names) {
        for (const char* method : {"GET", "DELETE", "HEAD"}) {
            std::string r = http(request(method, "/files/" + name), std::string(method) == "HEAD");
            cr_expect_eq(t::status_of(r), 400, "%s /files/%s: %s", method, name.c_str(), r.c_str());
        }
        std::string r = put(name, "evil");
        cr_expect_eq(t::status_of(r), 400, "PUT /files/%s: %s", name.c_str(), r.c_str());
        cr_expect(is_json_error(r, "invalid file name"), "PUT /files/%s: %s", name.c_str(),
                  r.c_str());
    }
    cr_expect(visible_files().empty());
    // "/files/" with nothing after it is the top folder.
    cr_expect_eq(t::status_of(http(request("GET", "/files/"))), 200);
    std::string max_name(255, 'm');
    cr_expect_eq(t::status_of(put(max_name, "long")), 201);
    cr_expect_eq(t::body_of(get(max_name)), "long");
    // Percent-encoded valid characters decode to the plain name.
    cr_expect_eq(t::body_of(get(std::string(254, 'm') + "%6D")), "long");
}

Test(e2e_http_files, planted_symlink_is_neither_listed_nor_served_nor_deleted) {
    boot();
    cr_assert_eq(symlink("/etc/passwd", (g_srv.data_dir + "/passwd").c_str()), 0);
    cr_assert_eq(symlink("/etc", (g_srv.data_dir + "/etcdir").c_str()), 0);
    cr_assert_eq(t::status_of(put("real.txt", "real")), 201);
    std::string list = t::body_of(http(request("GET", "/files")));
    cr_expect(list.find("passwd") == std::string::npos, "%s", list.c_str());
    cr_expect(list.find("etcdir") == std::string::npos, "%s", list.c_str());
    cr_expect(list.find("real.txt") != std::string::npos, "%s", list.c_str());
    std::string r = get("passwd");
    cr_expect_eq(t::status_of(r), 404, "%s", r.c_str());
    cr_expect(r.find("root:") == std::string::npos);
    cr_expect_eq(t::status_of(http(request("HEAD", "/files/passwd"), true)), 404);
    cr_expect_eq(t::status_of(http(request("DELETE", "/files/passwd"))), 404);
    cr_expect_eq(t::status_of(http(request("DELETE", "/files/etcdir"))), 404);
    struct stat st;
    cr_expect_eq(lstat((g_srv.data_dir + "/passwd").c_str(), &st), 0, "symlink was removed");
    cr_expect(access("/etc/passwd", F_OK) == 0);
}

Test(e2e_http_files, put_over_planted_symlink_never_writes_outside_the_store) {
    boot();
    std::string outside = g_tmp + "/outside.txt";
    t::write_file(outside, "untouched");
    cr_assert_eq(symlink(outside.c_str(), (g_srv.data_dir + "/link.txt").c_str()), 0);
    std::string r = put("link.txt", "overwritten?");
    int s = t::status_of(r);
    cr_expect(s == 200 || s == 201 || s == 400 || s == 403 || s == 409, "%s", r.c_str());
    cr_expect_eq(t::read_file(outside), "untouched");
}

// ---- uploads cut short ----

Test(e2e_http_files, client_disconnecting_mid_body_stores_nothing) {
    boot();
    long failed = metric("duet_uploads_total{result=\"failed\"}");
    cr_assert(failed >= 0);
    int fd = connect_http();
    t::send_all(fd, request("PUT", "/files/half.bin", "Content-Length: 200000\r\n",
                            t::random_bytes(100000, 9)));
    close(fd);
    cr_expect(wait_failed_uploads(failed + 1), "the cut upload was not counted as failed");
    cr_expect_eq(t::status_of(get("half.bin")), 404);
    cr_expect(visible_files().empty());
}

Test(e2e_http_files, client_disconnecting_mid_body_keeps_the_old_file) {
    boot();
    cr_assert_eq(t::status_of(put("keep.bin", "old contents")), 201);
    int fd = connect_http();
    t::send_all(fd, request("PUT", "/files/keep.bin", "Content-Length: 1000\r\n", "new, but cut"));
    close(fd);
    cr_expect(wait_failed_uploads(1));
    cr_expect_eq(t::body_of(get("keep.bin")), "old contents");
}

Test(e2e_http_files, client_stalling_mid_body_is_cut_at_idle_timeout_and_stores_nothing) {
    boot({"--idle-timeout", "1"});
    int fd = connect_http();
    t::send_all(
        fd, request("PUT", "/files/stall.bin", "Content-Length: 5000\r\n", std::string(2500, 's')));
    std::int64_t t0 = t::now_ms();
    cr_expect(t::peer_closed(fd, 4000), "stalled upload not cut");
    cr_expect(t::now_ms() - t0 >= 700);
    close(fd);
    cr_expect_eq(t::status_of(get("stall.bin")), 404);
    cr_expect(visible_files().empty());
}

Test(e2e_http_files, cut_chunked_upload_stores_nothing) {
    boot();
    int fd = connect_http();
    t::send_all(fd, request("PUT", "/files/cut.txt", "Transfer-Encoding: chunked\r\n",
                            "5\r\nhello\r\n5\r\nwor"));
    close(fd);
    cr_expect(wait_failed_uploads(1));
    cr_expect_eq(t::status_of(get("cut.txt")), 404);
    cr_expect(visible_files().empty());
}

Test(e2e_http_files, uploaded_file_is_visible_on_the_file_port) {
    boot();
    std::string data = "shared between ports";
    cr_assert_eq(t::status_of(put("both.txt", data)), 201);
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(fd >= 0);
    t::send_all(fd, "STAT both.txt\n");
    std::string line = t::read_line(fd);
    cr_expect(line.rfind("OK 20 " + t::sha256_hex(data), 0) == 0, "%s", line.c_str());
    close(fd);
}

// ---- more edges ----

Test(e2e_http_files, refused_put_with_expect_100_gets_no_100_and_closes) {
    boot();
    cr_assert_eq(t::status_of(put("taken.txt", "x")), 201);
    struct {
        const char* what;
        std::string head;
        int status;
    } cases[] = {
        {"bad name", request("PUT", "/files/.bad", "Content-Length: 5\r\nExpect: 100-continue\r\n"),
         400},
        {"If-None-Match *",
         request("PUT", "/files/taken.txt",
                 "Content-Length: 5\r\nExpect: 100-continue\r\n"
                 "If-None-Match: *\r\n"),
         412},
    };
    for (auto& c : cases) {
        int fd = connect_http();
        t::send_all(fd, c.head);
        std::string r = t::read_response(fd, false, 3000);
        cr_expect_eq(t::status_of(r), c.status, "%s: %s", c.what, r.c_str());
        cr_expect(t::peer_closed(fd, 4000), "%s: left open", c.what);
        close(fd);
    }
    cr_expect_eq(t::body_of(get("taken.txt")), "x");
}

Test(e2e_http_files, large_download_then_pipelined_request_stay_in_order) {
    boot();
    std::string data = t::random_bytes(3 << 20, 11);
    cr_assert_eq(t::status_of(put("large.bin", data)), 201);
    int fd = connect_http();
    t::send_all(fd, request("GET", "/files/large.bin") + request("GET", "/healthz") +
                        request("HEAD", "/files/large.bin"));
    std::string r = t::read_response(fd);
    cr_expect(t::body_of(r) == data, "large body differs (%zu bytes)", t::body_of(r).size());
    cr_expect_eq(t::body_of(t::read_response(fd)), "ok\n");
    std::string h = t::read_response(fd, true);
    cr_expect_eq(t::header_of(h, "Content-Length"), std::to_string(data.size()));
    close(fd);
}

Test(e2e_http_files, slow_reader_of_a_large_file_does_not_delay_others) {
    boot();
    std::string data = t::random_bytes(16 << 20, 13);
    cr_assert_eq(t::status_of(put("huge.bin", data)), 201);
    int slow = connect_http();
    t::send_all(slow, request("GET", "/files/huge.bin"));
    std::string first = t::read_n(slow, 1000);  // the download has started; now it stalls
    cr_assert_eq(first.size(), 1000u);
    for (int i = 0; i < 5; ++i) {
        std::int64_t t0 = t::now_ms();
        std::string r = http(request("GET", "/healthz"));
        cr_expect_eq(t::body_of(r), "ok\n");
        cr_expect(t::now_ms() - t0 < 1000, "a stalled reader delayed another client");
    }
    // The stalled download then completes intact (exactly its length: the connection stays
    // open, so reading for more would only wait for the timeout).
    std::size_t at = first.find("\r\n\r\n");
    cr_assert(at != std::string::npos);
    std::string all = first + t::read_n(slow, at + 4 + data.size() - first.size(), 15000);
    cr_assert_eq(all.size(), at + 4 + data.size());
    cr_expect(all.substr(at + 4) == data, "stalled download corrupted");
    close(slow);
}

Test(e2e_http_files, downloader_vanishing_mid_file_leaves_the_server_serving) {
    boot();
    cr_assert_eq(t::status_of(put("v.bin", t::random_bytes(8 << 20, 17))), 201);
    for (int i = 0; i < 3; ++i) {
        int fd = connect_http();
        t::send_all(fd, request("GET", "/files/v.bin"));
        t::read_n(fd, 5000);
        linger lg{1, 0};  // reset, not a polite close
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    cr_expect_eq(t::body_of(http(request("GET", "/healthz"))), "ok\n");
    cr_expect_eq(metric("duet_open_connections{port=\"http\"}"), 1);
}

Test(e2e_http_files, query_string_and_absolute_form_reach_the_file) {
    boot();
    cr_assert_eq(t::status_of(put("q.txt", "query")), 201);
    cr_expect_eq(t::body_of(http(request("GET", "/files/q.txt?download=1"))), "query");
    cr_expect_eq(t::body_of(http(request("GET", "http://x/files/q.txt"))), "query");
}

Test(e2e_http_files, empty_upload_is_stored_and_has_no_satisfiable_range) {
    boot();
    std::string r = put("empty.txt", "");
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    r = get("empty.txt");
    cr_expect_eq(t::status_of(r), 200);
    cr_expect_eq(t::header_of(r, "Content-Length"), "0");
    cr_expect_eq(t::header_of(r, "ETag"), "\"" + t::sha256_hex("") + "\"");
    r = get("empty.txt", "Range: bytes=0-\r\n");
    cr_expect_eq(t::status_of(r), 416, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Content-Range"), "bytes */0");
}

Test(e2e_http_files, if_range_with_another_etag_sends_the_whole_file) {
    boot();
    cr_assert_eq(t::status_of(put("ir.txt", "0123456789")), 201);
    std::string etag = t::header_of(get("ir.txt"), "ETag");
    std::string r = get("ir.txt", "Range: bytes=0-1\r\nIf-Range: \"other\"\r\n");
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::body_of(r), "0123456789");
    r = get("ir.txt", "Range: bytes=0-1\r\nIf-Range: " + etag + "\r\n");
    cr_expect_eq(t::status_of(r), 206, "%s", r.c_str());
    cr_expect_eq(t::body_of(r), "01");
}

Test(e2e_http_files, upload_metrics_count_stored_uploads) {
    boot();
    cr_assert_eq(t::status_of(put("m1.txt", "12345")), 201);
    cr_assert_eq(t::status_of(put("m2.txt", "678")), 201);
    cr_expect_eq(metric("duet_uploads_total{result=\"stored\"}"), 2);
    cr_expect_eq(metric("duet_upload_bytes_total"), 8);
    cr_expect_eq(metric("duet_stored_files"), 2);
    cr_expect_eq(metric("duet_stored_bytes"), 8);
    http(request("DELETE", "/files/m1.txt"));
    cr_expect_eq(metric("duet_stored_files"), 1);
    cr_expect_eq(metric("duet_stored_bytes"), 3);
}
