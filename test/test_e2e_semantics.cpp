// Black-box tests of issue 9 over raw sockets: conditional requests (a table over RFC 9110 §13.1
// × methods × exists/missing × match/no-match), compare-and-swap PUTs on both ports, every digest
// field and chunked trailers, strict Host and Content-Length, capacity on a small tmpfs,
// dot-segments, chunk-extension syntax, name errors, unreadable files, stalled uploads.
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
std::string g_tmp;
std::string g_mount;  // a tmpfs mounted by a test, unmounted by fini

void fini() {
    if (!g_mount.empty()) {
        t::stop(g_srv, 9);
        umount2(g_mount.c_str(), MNT_DETACH);
    }
    t::teardown();
}

void boot(std::vector<std::string> args = {}) {
    g_tmp = t::boot(std::move(args));
}

std::string request(const std::string& method, const std::string& path,
                    const std::string& fields = "", const std::string& body = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n" + body;
}

std::string http(const std::string& raw, bool head_only = false) {
    return t::http(g_srv.http_port, raw, head_only);
}

int status(const std::string& raw, bool head_only = false) {
    return t::status_of(http(raw, head_only));
}

std::string put_req(const std::string& name, const std::string& body,
                    const std::string& fields = "") {
    return request("PUT", "/files/" + name,
                   "Content-Length: " + std::to_string(body.size()) + "\r\n" + fields, body);
}

// SHA-256 computed in the test (helper_check.cpp), so no tool is needed for it.
std::string sha_b64(const std::string& data) {
    return t::sha256_b64(data);
}
std::string sha_hex(const std::string& data) {
    return t::sha256_hex(data);
}

std::string stored(const std::string& name) {
    return t::read_file(g_srv.data_dir + "/" + name);
}
bool on_disk(const std::string& name) {
    struct stat st;
    return ::stat((g_srv.data_dir + "/" + name).c_str(), &st) == 0;
}

long metric(const std::string& prefix) {
    std::string m = t::body_of(http(request("GET", "/metrics")));
    std::size_t at = m.find("\n" + prefix + " ");
    if (at == std::string::npos) return -1;
    return std::atol(m.c_str() + at + prefix.size() + 2);
}

int files_conn() {
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(fd >= 0);
    return fd;
}
std::string cmd(int fd, const std::string& line) {
    t::send_all(fd, line + "\n");
    return t::read_line(fd);
}

bool json_error_has(const std::string& resp, const std::string& text) {
    std::string body = t::body_of(resp);
    return body.rfind("{\"error\":\"", 0) == 0 && body.find(text) != std::string::npos;
}

}  // namespace

TestSuite(e2e_semantics, .fini = fini, .timeout = 60);

// ---- conditional requests: the table ----

namespace {

enum class Method { Get, Head, Put, Delete };
const char* method_name(Method m) {
    switch (m) {
        case Method::Get:
            return "GET";
        case Method::Head:
            return "HEAD";
        case Method::Put:
            return "PUT";
        case Method::Delete:
            return "DELETE";
    }
    return "?";
}

// The status RFC 9110 prescribes, written from §13.1, §13.2.1 and §13.2.2 (and §14.2 for
// If-Range): preconditions are evaluated only when the answer would otherwise be 2xx.
int expected_status(const std::string& header, Method m, bool exists, bool match) {
    bool read = m == Method::Get || m == Method::Head;
    int success = read ? 200 : m == Method::Put ? (exists ? 200 : 201) : 204;
    if (!exists && m != Method::Put) return 404;  // §13.2.1: 404 anyway, conditions ignored
    if (header == "If-Match") return exists && match ? success : 412;
    if (header == "If-None-Match") return exists && match ? (read ? 304 : 412) : success;
    if (header == "If-Unmodified-Since") return exists && !match ? 412 : success;
    if (header == "If-Modified-Since") return exists && match && read ? 304 : success;
    if (header == "If-Range") return m == Method::Get && exists && match ? 206 : success;
    return -1;
}

}  // namespace

Test(e2e_semantics, precondition_table_every_header_method_state_and_match) {
    boot();
    const std::string v1 = "version one\n";
    std::string v1_tag = "\"" + sha_hex(v1) + "\"";
    const char* headers[] = {"If-Match", "If-None-Match", "If-Modified-Since",
                             "If-Unmodified-Since", "If-Range"};
    int cases = 0;
    for (const char* header : headers) {
        for (Method m : {Method::Get, Method::Head, Method::Put, Method::Delete}) {
            for (bool exists : {true, false}) {
                for (bool match : {true, false}) {
                    // A fresh state for each case.
                    std::string last_modified;
                    if (exists) {
                        std::string r = http(put_req("t.txt", v1));
                        cr_assert(t::status_of(r) == 200 || t::status_of(r) == 201);
                        last_modified = t::header_of(http(request("HEAD", "/files/t.txt"), true),
                                                     "last-modified");
                        cr_assert(!last_modified.empty());
                    } else {
                        http(request("DELETE", "/files/t.txt"));
                        last_modified = "Sun, 06 Nov 1994 08:49:37 GMT";
                    }
                    std::string h = header;
                    std::string value;
                    if (h == "If-Match" || h == "If-None-Match" || h == "If-Range")
                        value = match ? v1_tag : "\"" + std::string(64, '0') + "\"";
                    else  // the validator "matches" when the file is unmodified since the date
                        value = match ? last_modified : "Sat, 01 Jan 2000 00:00:00 GMT";
                    std::string fields = h + ": " + value + "\r\n";
                    if (h == "If-Range") fields += "Range: bytes=0-0\r\n";
                    std::string raw;
                    const std::string v2 = "version two\n";
                    if (m == Method::Put)
                        raw = put_req("t.txt", v2, fields);
                    else
                        raw = request(method_name(m), "/files/t.txt", fields);
                    std::string resp = http(raw, m == Method::Head);
                    int want = expected_status(h, m, exists, match);
                    cr_expect_eq(t::status_of(resp), want, "%s %s (%s, %s): got %d, want %d",
                                 method_name(m), header, exists ? "exists" : "missing",
                                 match ? "match" : "no match", t::status_of(resp), want);
                    // A refused change changes nothing.
                    if (want == 412 && exists)
                        cr_expect(stored("t.txt") == v1, "%s %s changed the file", method_name(m),
                                  header);
                    if (want == 412 && !exists)
                        cr_expect_not(on_disk("t.txt"), "%s %s created the file", method_name(m),
                                      header);
                    if (want == 304) cr_expect(t::header_of(resp, "etag") == v1_tag);
                    ++cases;
                }
            }
        }
    }
    cr_expect_eq(cases, 80);
}

Test(e2e_semantics, star_forms_of_if_match_and_if_none_match) {
    boot();
    cr_expect_eq(status(put_req("s.txt", "x", "If-Match: *\r\n")), 412, "If-Match: * on missing");
    cr_expect_not(on_disk("s.txt"));
    cr_expect_eq(status(put_req("s.txt", "x", "If-None-Match: *\r\n")), 201);
    cr_expect_eq(status(put_req("s.txt", "y", "If-None-Match: *\r\n")), 412);
    cr_expect_eq(status(put_req("s.txt", "z", "If-Match: *\r\n")), 200);
    cr_expect(stored("s.txt") == "z");
    cr_expect_eq(status(request("GET", "/files/s.txt", "If-None-Match: *\r\n")), 304);
    cr_expect_eq(status(request("DELETE", "/files/s.txt", "If-None-Match: *\r\n")), 412);
    cr_expect_eq(status(request("DELETE", "/files/s.txt", "If-Match: *\r\n")), 204);
    // Repeated fields combine into one list (RFC 9110 §5.3).
    http(put_req("s.txt", "z"));
    std::string tag = "\"" + sha_hex("z") + "\"";
    cr_expect_eq(status(put_req("s.txt", "w", "If-Match: \"nope\"\r\nIf-Match: " + tag + "\r\n")),
                 200);
}

Test(e2e_semantics, precondition_failure_with_expect_100_sends_412_not_100) {
    boot();
    http(put_req("e.txt", "old"));
    int fd = t::connect_port(g_srv.http_port);
    t::send_all(fd, request("PUT", "/files/e.txt",
                            "Content-Length: 5\r\nExpect: 100-continue\r\nIf-Match: \"bad\"\r\n"));
    std::string r = t::read_response(fd);
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    cr_expect(json_error_has(r, "precondition"));
    cr_expect(t::peer_closed(fd));
    close(fd);
    cr_expect(stored("e.txt") == "old");
}

// Two clients read ETag X and both PUT with If-Match: "X": exactly one wins, every round.
Test(e2e_semantics, concurrent_if_match_puts_on_http_exactly_one_wins_100_rounds) {
    boot();
    std::string r0 = http(put_req("cas.txt", "round -1"));
    std::string etag = t::header_of(r0, "etag");
    cr_assert(!etag.empty());
    for (int round = 0; round < 100; ++round) {
        std::string a = "A " + std::to_string(round), b = "B " + std::to_string(round) + "!";
        int fa = t::connect_port(g_srv.http_port), fb = t::connect_port(g_srv.http_port);
        std::string ha = request(
            "PUT", "/files/cas.txt",
            "Content-Length: " + std::to_string(a.size()) + "\r\nIf-Match: " + etag + "\r\n");
        std::string hb = request(
            "PUT", "/files/cas.txt",
            "Content-Length: " + std::to_string(b.size()) + "\r\nIf-Match: " + etag + "\r\n");
        // Both heads first, then both bodies: both pass the check at the head.
        t::send_all(fa, ha);
        t::send_all(fb, hb);
        usleep(round % 2 ? 0 : 500);
        t::send_all(fb, b);
        t::send_all(fa, a);
        std::string ra = t::read_response(fa), rb = t::read_response(fb);
        close(fa);
        close(fb);
        int sa = t::status_of(ra), sb = t::status_of(rb);
        bool a_won = sa == 200 && sb == 412, b_won = sb == 200 && sa == 412;
        cr_assert(a_won || b_won, "round %d: %d and %d", round, sa, sb);
        std::string now = stored("cas.txt");
        cr_assert(now == (a_won ? a : b), "round %d: stored '%s'", round, now.c_str());
        etag = t::header_of(a_won ? ra : rb, "etag");
    }
    // Only whole temporaries were ever made: nothing but the file is visible.
    cr_expect_eq(std::atoi(t::sh("ls '" + g_srv.data_dir + "' | wc -l").c_str()), 1);
}

Test(e2e_semantics, concurrent_if_puts_on_the_file_port_exactly_one_wins_100_rounds) {
    boot();
    int f0 = files_conn();
    // A sized PUT has no answer before its bytes: line and bytes go together.
    t::send_all(f0, "PUT cas.bin 3\nabc");
    std::string line = t::read_line(f0);
    cr_assert(line.rfind("OK 3 ", 0) == 0, "%s", line.c_str());
    close(f0);
    std::string digest = line.substr(5);
    for (int round = 0; round < 100; ++round) {
        std::string a = "a" + std::to_string(round), b = "bb" + std::to_string(round);
        int fa = files_conn(), fb = files_conn();
        t::send_all(fa, "PUT cas.bin " + std::to_string(a.size()) + " if=" + digest + "\n");
        t::send_all(fb, "PUT cas.bin " + std::to_string(b.size()) + " if=" + digest + "\n");
        usleep(round % 2 ? 0 : 500);
        t::send_all(fb, b);
        t::send_all(fa, a);
        std::string la = t::read_line(fa), lb = t::read_line(fb);
        close(fa);
        close(fb);
        bool a_won = la.rfind("OK ", 0) == 0 && lb == "ERR 412 precondition failed";
        bool b_won = lb.rfind("OK ", 0) == 0 && la == "ERR 412 precondition failed";
        cr_assert(a_won || b_won, "round %d: '%s' and '%s'", round, la.c_str(), lb.c_str());
        std::string won = a_won ? la : lb;
        digest = won.substr(won.rfind(' ') + 1);
        cr_assert(stored("cas.bin") == (a_won ? a : b));
    }
}

Test(e2e_semantics, file_port_preconditions) {
    boot();
    int fd = files_conn();
    t::send_all(fd, "PUT p.txt 2\nhi");
    std::string ok = t::read_line(fd);
    std::string digest = ok.substr(ok.rfind(' ') + 1);
    // DEL with a wrong digest: 412, nothing changes, the session goes on.
    cr_expect_eq(cmd(fd, "DEL p.txt if=" + std::string(64, 'a')), "ERR 412 precondition failed");
    cr_expect(on_disk("p.txt"));
    cr_expect_eq(cmd(fd, "DEL p.txt if=none"), "ERR 412 precondition failed");
    cr_expect_eq(cmd(fd, "PING"), "OK pong");
    // A sized PUT refused before its bytes: ERR 412 and close (the bytes would follow).
    cr_expect_eq(cmd(fd, "PUT p.txt 2 if=none"), "ERR 412 precondition failed");
    cr_expect(t::peer_closed(fd));
    close(fd);
    fd = files_conn();
    t::send_all(fd, "PUT p.txt 2 if=" + digest + "\nho");
    std::string l = t::read_line(fd);
    cr_expect(l.rfind("OK 2 ", 0) == 0, "%s", l.c_str());
    cr_expect(stored("p.txt") == "ho");
    cr_expect_eq(cmd(fd, "PUT new.txt 1 if=" + digest), "ERR 412 precondition failed");
    close(fd);
    fd = files_conn();
    t::send_all(fd, "PUT new.txt 1 if=none\nx");
    cr_expect(t::read_line(fd).rfind("OK 1 ", 0) == 0);
    cr_expect_eq(cmd(fd, "DEL p.txt if=" + l.substr(l.rfind(' ') + 1)), "OK");
    cr_expect_not(on_disk("p.txt"));
    // HELP documents it.
    std::string help = cmd(fd, "HELP");
    std::string all;
    for (int i = 0, n = std::atoi(help.c_str() + 3); i < n; ++i) all += t::read_line(fd) + "\n";
    cr_expect(all.find("if=SHA256|if=none") != std::string::npos, "%s", all.c_str());
    close(fd);
}

// ---- digests ----

Test(e2e_semantics, every_digest_field_must_match) {
    boot();
    std::string body = "digest me\n";
    std::string right = "sha-256=:" + sha_b64(body) + ":";
    std::string wrong = "sha-256=:" + sha_b64("other") + ":";
    struct {
        const char* what;
        std::string fields;
        int status;
    } cases[] = {
        {"right repr, wrong content",
         "Repr-Digest: " + right + "\r\nContent-Digest: " + wrong + "\r\n", 400},
        {"wrong repr, right content",
         "Repr-Digest: " + wrong + "\r\nContent-Digest: " + right + "\r\n", 400},
        {"two repr lines, right then wrong (last wins)",
         "Repr-Digest: " + right + "\r\nRepr-Digest: " + wrong + "\r\n", 400},
        {"two repr lines, wrong then right (last wins)",
         "Repr-Digest: " + wrong + "\r\nRepr-Digest: " + right + "\r\n", 201},
        {"one line, right then wrong key", "Repr-Digest: " + right + ", " + wrong + "\r\n", 400},
        {"unknown algorithm only", "Repr-Digest: sha-999=:AAAA:\r\n", 201},
        {"unknown algorithm and right", "Content-Digest: md5=:AAAA:, " + right + "\r\n", 201},
        {"malformed", "Repr-Digest: sha-256=:" + sha_b64(body) + "\r\n", 400},
        {"malformed dictionary", "Repr-Digest: " + right + ",\r\n", 400},
        {"both right", "Repr-Digest: " + right + "\r\nContent-Digest: " + right + "\r\n", 201},
    };
    int i = 0;
    for (const auto& c : cases) {
        std::string name = "d" + std::to_string(i++) + ".txt";
        std::string r = http(put_req(name, body, c.fields));
        cr_expect_eq(t::status_of(r), c.status, "%s: %s", c.what, r.c_str());
        cr_expect_eq(on_disk(name), c.status == 201, "%s: stored?", c.what);
    }
}

Test(e2e_semantics, digests_in_chunked_trailers_are_checked) {
    boot();
    std::string body = "trailer body";
    std::string right = "sha-256=:" + sha_b64(body) + ":";
    std::string wrong = "sha-256=:" + sha_b64("x") + ":";
    auto chunked = [&](const std::string& head_fields, const std::string& trailers) {
        return request("PUT", "/files/tr.txt",
                       "Transfer-Encoding: chunked\r\nTrailer: Repr-Digest\r\n" + head_fields,
                       "5\r\ntrail\r\n7\r\ner body\r\n0\r\n" + trailers + "\r\n");
    };
    cr_expect_eq(status(chunked("", "Repr-Digest: " + wrong + "\r\n")), 400);
    cr_expect_not(on_disk("tr.txt"));
    cr_expect_eq(status(chunked("", "Content-Digest: " + wrong + "\r\n")), 400);
    cr_expect_eq(
        status(chunked("Repr-Digest: " + right + "\r\n", "Repr-Digest: " + wrong + "\r\n")), 400);
    cr_expect_eq(status(chunked("", "Repr-Digest: sha-256=:broken\r\n")), 400);
    cr_expect_not(on_disk("tr.txt"));
    cr_expect_eq(status(chunked("", "Repr-Digest: " + right + "\r\nX-Other: 1\r\n")), 201);
    cr_expect(stored("tr.txt") == body);
}

Test(e2e_semantics, want_repr_digest_is_answered_with_sha256) {
    boot();
    http(put_req("w.txt", "want"));
    for (const char* m : {"GET", "HEAD"}) {
        std::string r =
            http(request(m, "/files/w.txt", "Want-Repr-Digest: sha-256=10, sha-512=3\r\n"),
                 std::string(m) == "HEAD");
        cr_expect(t::header_of(r, "repr-digest") == "sha-256=:" + sha_b64("want") + ":", "%s",
                  r.c_str());
    }
}

// ---- targets and lengths ----

Test(e2e_semantics, invalid_host_is_400) {
    boot();
    for (const char* h : {"a b", "a/b", "u@h", "a, b", "h:8x"}) {
        std::string r = http("GET /healthz HTTP/1.1\r\nHost: " + std::string(h) + "\r\n\r\n");
        cr_expect_eq(t::status_of(r), 400, "Host: %s -> %s", h, r.c_str());
    }
    cr_expect_eq(status("GET /healthz HTTP/1.1\r\nHost: h:8080\r\n\r\n"), 200);
    cr_expect_eq(status("GET /healthz HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 200);
}

Test(e2e_semantics, content_length_past_63_bits_is_400_at_once) {
    boot();
    int fd = t::connect_port(g_srv.http_port);
    t::send_all(fd, request("PUT", "/files/big", "Content-Length: 9223372036854775808\r\n"));
    std::int64_t t0 = t::now_ms();
    std::string r = t::read_response(fd, false, 3000);
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect_lt(t::now_ms() - t0, 2000);
    close(fd);
}

Test(e2e_semantics, dot_segments_are_removed_before_routing) {
    boot();
    std::string r = http(request("GET", "/files/../healthz"));
    cr_expect_eq(t::status_of(r), 200);
    cr_expect(t::body_of(r) == "ok\n");
    cr_expect_eq(status(put_req("../files/./x.txt", "dots")), 201);  // /files/../files/./x.txt
    cr_expect(stored("x.txt") == "dots");
    cr_expect_eq(status(request("GET", "/a/../files/x.txt")), 200);
    // Names are still checked afterwards: an encoded dot-dot stays a name, and is refused.
    cr_expect_eq(status(request("GET", "/files/%2e%2e")), 400);
}

Test(e2e_semantics, chunk_extension_syntax) {
    boot();
    auto chunked = [](const std::string& size_line) {
        return request("PUT", "/files/c.txt", "Transfer-Encoding: chunked\r\n",
                       size_line + "\r\nhi\r\n0\r\n\r\n");
    };
    cr_expect_eq(status(chunked("2;")), 400, "empty name");
    cr_expect_eq(status(chunked("2;a=\"open")), 400, "unbalanced quote");
    cr_expect_eq(status(chunked("2;a=")), 400, "no value");
    cr_expect_not(on_disk("c.txt"));
    cr_expect_eq(status(chunked("2;a=b;c=\"q;\\\"x\" ;d")), 201);
}

Test(e2e_semantics, capacity_of_a_16_mib_tmpfs_413_and_507_at_once) {
    if (geteuid() != 0) cr_skip_test("not applicable: not root, so no tmpfs can be mounted");
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string mnt = dir + "/store";
    mkdir(mnt.c_str(), 0755);
    if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16m") != 0)
        cr_skip_test("not applicable: mounting a tmpfs is not permitted here: %s", strerror(errno));
    g_mount = mnt;
    cr_assert(t::start(g_srv, {}, mnt), "%s", g_srv.err_log.c_str());
    auto at_once = [](const std::string& head) {
        int fd = t::connect_port(g_srv.http_port);
        t::send_all(fd, head);
        std::string r = t::read_response(fd, false, 3000);
        close(fd);
        return r;
    };
    std::string r = at_once(request("PUT", "/files/huge", "Content-Length: 33554432\r\n"));
    cr_expect_eq(t::status_of(r), 413, "32 MiB on a 16 MiB fs: %s", r.c_str());
    // Fill 8 MiB, then 12 MiB does not fit in what is left.
    std::string eight(8 << 20, 'e');
    cr_assert_eq(status(put_req("eight", eight)), 201);
    r = at_once(request("PUT", "/files/twelve", "Content-Length: 12582912\r\n"));
    cr_expect_eq(t::status_of(r), 507, "12 MiB with about 8 free: %s", r.c_str());
    cr_expect(json_error_has(r, "space"));
    // The file port answers the same, before any byte is read.
    int fd = files_conn();
    cr_expect_eq(cmd(fd, "PUT huge 33554432"), "ERR 413 upload larger than the file system");
    close(fd);
    fd = files_conn();
    cr_expect_eq(cmd(fd, "PUT twelve 12582912"), "ERR 507 not enough free space; nothing stored");
    close(fd);
    t::stop(g_srv);
    umount2(mnt.c_str(), MNT_DETACH);
    g_mount.clear();
}

// ---- name errors ----

Test(e2e_semantics, name_errors_say_which_rule_failed) {
    boot();
    struct {
        const char* raw;
        const char* says;
    } cases[] = {
        {"%20file", "invalid file name: must not start with a space"},
        {"file%20", "invalid file name: must not end with a space"},
        {"a%09b", "invalid file name: a control character (U+0009) at byte 2"},
        {"a%C2%85b", "invalid file name: a control character (U+0085) at byte 2"},
        {"ab%E2%80%AE", "invalid file name: a bidirectional control (U+202E) at byte 3"},
        {"a%E2%81%A6", "invalid file name: a bidirectional control (U+2066) at byte 2"},
        {"a%FFb", "invalid file name: not valid UTF-8 at byte 2"},
        {"a%C0%AFb", "invalid file name: not valid UTF-8 at byte 2"},
        {"a%ED%A0%80", "invalid file name: not valid UTF-8 at byte 2"},
        {"a%5Cb", "invalid file name: a backslash at byte 2"},
        {".hidden", "invalid file name: must not start with '.'"},
        {"a%zz", "invalid file name: bad percent escape at byte 2"},
        {"a%2Fb", "invalid file name: a '/' inside a name (%2F) at byte 2"},
    };
    for (const auto& c : cases) {
        std::string r = http(request("GET", std::string("/files/") + c.raw));
        cr_expect_eq(t::status_of(r), 400);
        cr_expect(t::body_of(r) == std::string("{\"error\":\"") + c.says + "\"}\n", "%s: %s", c.raw,
                  t::body_of(r).c_str());
    }
    std::string r = http(request("GET", "/files/" + std::string(256, 'n')));
    cr_expect(json_error_has(r, "is 256 bytes, the limit is 255"), "%s", r.c_str());
    // The file port names the rule too, and reads the name first.
    int fd = files_conn();
    cr_expect_eq(cmd(fd, "GET .x"), "ERR 400 invalid file name: must not start with '.'");
    cr_expect_eq(cmd(fd, "GET a%09b"),
                 "ERR 400 invalid file name: a control character (U+0009) at byte 2");
    cr_expect_eq(cmd(fd, "PUT my file.txt 5"),
                 "ERR 400 invalid file name: a space must be written %20 on this port");
    cr_expect(t::peer_closed(fd), "a refused PUT closes: its bytes would follow");
    close(fd);
}

// ---- parity ----

Test(e2e_semantics, stalled_http_upload_is_408_and_counted_failed) {
    boot({"--idle-timeout", "1"});
    long before = metric("duet_uploads_total{result=\"failed\"}");
    int fd = t::connect_port(g_srv.http_port);
    t::send_all(fd, request("PUT", "/files/stall", "Content-Length: 100\r\n", "only part"));
    std::string r = t::read_response(fd, false, 5000);
    cr_expect_eq(t::status_of(r), 408, "%s", r.c_str());
    cr_expect(json_error_has(r, "stalled"));
    cr_expect(t::peer_closed(fd));
    close(fd);
    cr_expect_eq(metric("duet_uploads_total{result=\"failed\"}"), before + 1);
    cr_expect_not(on_disk("stall"));
}

Test(e2e_semantics, reset_http_upload_is_counted_failed) {
    boot();
    long before = metric("duet_uploads_total{result=\"failed\"}");
    int fd = t::connect_port(g_srv.http_port);
    t::send_all(fd, request("PUT", "/files/reset", "Content-Length: 100\r\n", "part"));
    usleep(100 * 1000);
    linger lg{1, 0};  // close with RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    std::int64_t deadline = t::now_ms() + 5000;
    while (metric("duet_uploads_total{result=\"failed\"}") < before + 1 && t::now_ms() < deadline)
        usleep(20 * 1000);
    cr_expect_eq(metric("duet_uploads_total{result=\"failed\"}"), before + 1);
    // And the same count on the file port for the same event.
    int f = files_conn();
    t::send_all(f, "PUT r2 100\npart");
    usleep(100 * 1000);
    setsockopt(f, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(f);
    deadline = t::now_ms() + 5000;
    while (metric("duet_uploads_total{result=\"failed\"}") < before + 2 && t::now_ms() < deadline)
        usleep(20 * 1000);
    cr_expect_eq(metric("duet_uploads_total{result=\"failed\"}"), before + 2);
}

// A file duet may not read: tests run as root, so duet runs as nobody (setpriv) on a store it
// owns, and root drops in a file of mode 0600 that nobody cannot read.
Test(e2e_semantics, unreadable_file_is_403_everywhere_and_listed_without_digest) {
    if (geteuid() != 0)
        cr_skip_test("not applicable: not root, so duet cannot run as another user");
    if (access("/usr/bin/setpriv", X_OK) != 0) cr_skip_test("setpriv is missing");
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    chmod(dir.c_str(), 0755);
    std::string data = dir + "/data";
    mkdir(data.c_str(), 0755);
    cr_assert_eq(chown(data.c_str(), 65534, 65534), 0);
    std::string bin = t::duet_binary();
    char real[4096];
    cr_assert(realpath(bin.c_str(), real));
    // The binary must be reachable for nobody: copy it next to the store.
    std::string copy = dir + "/duet";
    t::sh("cp '" + std::string(real) + "' '" + copy + "' && chmod 755 '" + copy + "'");
    t::write_file(data + "/secret", "root only");
    chmod((data + "/secret").c_str(), 0600);
    t::write_file(data + "/open", "anyone");
    chmod((data + "/open").c_str(), 0644);
    bool ok = t::start(g_srv,
                       {"--reuid=65534", "--regid=65534", "--clear-groups", "--", copy, "--http",
                        "127.0.0.1:0", "--files", "127.0.0.1:0", "--data", data},
                       data, {}, "/usr/bin/setpriv");
    if (!ok) cr_skip_test("cannot start duet as nobody: %s", g_srv.err_log.c_str());
    std::string r = http(request("GET", "/files/secret"));
    cr_expect_eq(t::status_of(r), 403, "%s", r.c_str());
    cr_expect_eq(status(request("HEAD", "/files/secret"), true), 403);
    cr_expect_eq(status(request("DELETE", "/files/secret")), 403);
    cr_expect(on_disk("secret"), "DELETE 403 removed nothing");
    std::string list = t::body_of(http(request("GET", "/files")));
    cr_expect(list.find("{\"name\":\"secret\",\"size\":9,\"sha256\":null,") != std::string::npos,
              "%s", list.c_str());
    cr_expect(list.find("\"name\":\"open\"") != std::string::npos);
    int fd = files_conn();
    cr_expect_eq(cmd(fd, "GET secret").substr(0, 7), "ERR 403");
    cr_expect_eq(cmd(fd, "STAT secret").substr(0, 7), "ERR 403");
    cr_expect_eq(cmd(fd, "DEL secret").substr(0, 7), "ERR 403");
    cr_expect_eq(cmd(fd, "LIST"), "OK 2");
    cr_expect_eq(t::read_line(fd), "open 6 " + sha_hex("anyone"));
    cr_expect_eq(t::read_line(fd), "secret 9 -");
    // A precondition needs the digest duet cannot compute: 403 there too, nothing replaced.
    cr_expect_eq(cmd(fd, "PUT secret 1 if=none"), "ERR 403 not readable by the server");
    cr_expect(t::peer_closed(fd));
    close(fd);
    cr_expect_eq(status(put_req("secret", "x", "If-Match: *\r\n")), 403);
    cr_expect(on_disk("secret"));
    cr_expect_eq(t::read_file(g_srv.data_dir + "/secret"), "root only");
}
