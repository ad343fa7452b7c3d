// Resumable uploads, black-box: bad input (unknown IDs, another token, past the length, two
// appends at once, --max-upload), disk full, expiry and CORS (README "HTTP API").
#include <criterion/criterion.h>

#include "resumable_helper.hpp"

using namespace rt;
using t::teardown;

TestSuite(resumable_limits, .fini = teardown, .timeout = 60);

// ---- bad input ----------------------------------------------------------------------------------

Test(resumable_limits, unknown_ids_are_404) {
    boot();
    cr_expect_eq(
        t::status_of(http(request("HEAD", "/uploads/0123456789abcdef0123456789abcdef"), true)),
        404);
    cr_expect_eq(t::status_of(http(request("PATCH", "/uploads/nope", kTus, "x"))), 404);
    cr_expect_eq(t::status_of(http(request("DELETE", "/uploads/../../etc"))), 404);
}

Test(resumable_limits, another_tokens_partial_is_not_found) {
    boot({"--token", "first"});
    std::string auth1 = "Authorization: Bearer first\r\n";
    std::string r = http(request(
        "POST", "/uploads",
        auth1 + kTus + "Upload-Length: 10\r\nUpload-Metadata: filename " + b64("s.bin") + "\r\n"));
    std::string loc = t::header_of(r, "Location");
    cr_assert(!loc.empty(), "%s", r.c_str());
    cr_expect_eq(t::status_of(http(request("HEAD", loc, kTus), true)), 401);
    restart({"--token", "second"});
    std::string auth2 = "Authorization: Bearer second\r\n";
    cr_expect_eq(t::status_of(http(request("HEAD", loc, auth2 + kTus), true)), 404);
    cr_expect_eq(t::body_of(http(request("GET", "/uploads", auth2))), "[]\n");
    int fd = t::connect_port(g_srv.files_port);
    cr_expect_eq(files_cmd(fd, "AUTH second"), "OK");
    cr_expect_eq(files_cmd(fd, "PARTIAL"), "OK 0");
    close(fd);
    restart({"--token", "first"});
    cr_expect_eq(t::status_of(http(request("HEAD", loc, auth1 + kTus), true)), 200);
}

Test(resumable_limits, append_past_the_length_is_400_and_deactivates) {
    boot();
    std::string r = http(request("POST", "/files/l.bin",
                                 "Upload-Complete: ?0\r\nUpload-Length: 5\r\n" + kIetf, "abc"));
    std::string loc = t::header_of(r, "Location");
    cr_assert(!loc.empty(), "%s", r.c_str());
    r = http(request("PATCH", loc,
                     "Upload-Offset: 3\r\nUpload-Complete: ?0\r\nContent-Type: "
                     "application/partial-upload\r\n",
                     "defgh"));
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect_eq(t::status_of(http(request("HEAD", loc), true)), 404, "still active");
    // Chunked: the length is only crossed while the body streams.
    r = http(
        request("POST", "/uploads",
                kTus + "Upload-Length: 4\r\nUpload-Metadata: filename " + b64("m.bin") + "\r\n"));
    loc = t::header_of(r, "Location");
    r = http("PATCH " + loc +
             " HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: "
             "application/offset+octet-stream\r\nUpload-Offset: 0\r\nTransfer-Encoding: "
             "chunked\r\n\r\n6\r\nabcdef\r\n0\r\n\r\n");
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect_eq(t::status_of(http(request("HEAD", loc, kTus), true)), 404);
}

Test(resumable_limits, two_appends_at_once_the_later_is_409) {
    boot();
    std::string r = http(request(
        "POST", "/uploads",
        kTus + "Upload-Length: 100000\r\nUpload-Metadata: filename " + b64("cc.bin") + "\r\n"));
    std::string loc = t::header_of(r, "Location");
    int first = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(first, "PATCH " + loc +
                                     " HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                                     "Content-Type: application/offset+octet-stream\r\n"
                                     "Upload-Offset: 0\r\nContent-Length: 100000\r\n\r\n" +
                                     std::string(1000, 'a')));
    // HEAD makes the running append durable first, so this also waits for it to have started.
    r = head_until(loc, 1000);
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "1000", "%s", r.c_str());
    r = http(request(
        "PATCH", loc,
        kTus + "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 1000\r\n", "b"));
    cr_expect_eq(t::status_of(r), 409, "%s", r.c_str());
    int fd = t::connect_port(g_srv.files_port);
    cr_expect(files_cmd(fd, "RESUME cc.bin 100000").rfind("ERR 409", 0) == 0);
    close(fd);
    cr_assert(t::send_all(first, std::string(99000, 'a')));
    r = t::read_response(first);
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    close(first);
    cr_expect_eq(t::body_of(http(request("GET", "/files/cc.bin"))), std::string(100000, 'a'));
}

Test(resumable_limits, max_upload_applies_to_the_whole_upload) {
    boot({"--max-upload", "1000"});
    std::string r = http(request("POST", "/files/big.bin", "Upload-Complete: ?0\r\n" + kIetf,
                                 std::string(800, 'a')));
    std::string loc = t::header_of(r, "Location");
    cr_assert(!loc.empty(), "%s", r.c_str());
    r = http(request("PATCH", loc,
                     "Upload-Offset: 800\r\nUpload-Complete: ?1\r\nContent-Type: "
                     "application/partial-upload\r\n",
                     std::string(300, 'a')));
    cr_expect_eq(t::status_of(r), 413, "%s", r.c_str());
    cr_expect_eq(t::header_of(http(request("HEAD", loc), true), "Upload-Offset"), "800");
    r = http(request("PUT", "/files/big2.bin", "Upload-Complete: ?1\r\n" + kIetf,
                     std::string(1001, 'a')));
    cr_expect_eq(t::status_of(r), 413, "%s", r.c_str());
    int fd = t::connect_port(g_srv.files_port);
    cr_expect(files_cmd(fd, "RESUME f.bin 1001").rfind("ERR 413", 0) == 0);
    close(fd);
}

// RLIMIT_FSIZE stands in for a full disk (as in test_e2e_crash): writes past 1 MiB fail.
Test(resumable_limits, disk_full_mid_append_is_507_and_keeps_the_partial) {
    g_dir = t::make_tmpdir();
    t::remove_at_teardown(g_dir);
    std::string data = g_dir + "/data";
    bool ok = t::start(g_srv,
                       {"-c", "ulimit -f 2048 && exec \"$0\" \"$@\"", t::duet_binary(), "--http",
                        "127.0.0.1:0", "--files", "127.0.0.1:0", "--data", data},
                       data, {}, "/bin/sh");
    cr_assert(ok, "%s", g_srv.err_log.c_str());
    const std::string big = t::random_bytes(2 << 20, 6);
    int fd = t::connect_port(g_srv.http_port);
    std::string head =
        "PUT /files/full.bin HTTP/1.1\r\nHost: x\r\nContent-Length: " + num(big.size()) +
        "\r\nUpload-Complete: ?1\r\n" + kIetf + "\r\n";
    cr_assert(t::send_all(fd, head));
    std::string first = t::read_response(fd);
    std::string loc = t::header_of(first, "Location");
    cr_assert(!loc.empty(), "%s", first.c_str());
    t::send_all(fd, big);  // the server may answer and stop reading before the end
    std::string r = final_response(fd);
    close(fd);
    cr_expect_eq(t::status_of(r), 507, "%s", r.c_str());
    // The 507 says where a resume starts: a durable offset, at most what HEAD says later.
    std::string said = t::header_of(r, "Upload-Offset");
    cr_expect(!said.empty(), "no Upload-Offset on the 507: %s", r.c_str());
    r = http(request("HEAD", loc), true);
    cr_expect_eq(t::status_of(r), 204, "the partial is gone: %s", r.c_str());
    std::uint64_t off = std::strtoull(t::header_of(r, "Upload-Offset").c_str(), nullptr, 10);
    cr_expect(off > 0 && off <= (1u << 20), "offset %llu", (unsigned long long)off);
    cr_expect(std::strtoull(said.c_str(), nullptr, 10) <= off, "507 said %s, HEAD %llu",
              said.c_str(), (unsigned long long)off);
    cr_expect_eq(t::status_of(http(request("GET", "/files/full.bin"))), 404);
}

// A declared length is checked at creation as a PUT's Content-Length is: larger than the store's
// file system is 413 at once, on both HTTP doors, and no partial is made.
Test(resumable_limits, a_length_larger_than_the_file_system_is_413_at_creation) {
    boot();
    const std::string huge = "100000000000000";  // 100 TB
    std::string r = http(request("POST", "/uploads",
                                 kTus + "Upload-Length: " + huge +
                                     "\r\nUpload-Metadata: filename " + b64("h.bin") + "\r\n"));
    cr_expect_eq(t::status_of(r), 413, "%s", r.c_str());
    cr_expect(t::is_json_error(r, "file system"), "%s", r.c_str());
    r = http(request("POST", "/files/h.bin",
                     "Upload-Complete: ?0\r\nUpload-Length: " + huge + "\r\n" + kIetf, "abc"));
    cr_expect_eq(t::status_of(r), 413, "%s", r.c_str());
    int fd = t::connect_port(g_srv.files_port);
    cr_expect_eq(files_cmd(fd, "RESUME h.bin " + huge),
                 "ERR 413 upload larger than the file system");
    close(fd);
    cr_expect_eq(t::body_of(http(request("GET", "/uploads"))), "[]\n");
    // POST /files/NAME without Upload-Complete: 400 saying what is missing, not a 405.
    r = http(request("POST", "/files/p.bin", "", "abc"));
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect(t::is_json_error(r, "Upload-Complete"), "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Allow"), "", "%s", r.c_str());
}

// Expiry keeps up with creation: 200 partials that expire together are all gone within
// a couple of sweeps, not 16 a second.
Test(resumable_limits, expiry_keeps_up_with_hundreds_of_partials) {
    boot({"--partial-ttl", "1"});
    constexpr int kParts = 200;
    for (int i = 0; i < kParts; ++i) {
        std::string r = http(request("POST", "/files/x" + std::to_string(i) + ".bin",
                                     "Upload-Complete: ?0\r\n" + kIetf, "abc"));
        cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    }
    std::string left;
    for (int i = 0; i < 60; ++i) {  // the sweep runs each second: bounded polling, 6 s
        left = metric("duet_partial_uploads");
        if (left == "0") break;
        usleep(100000);
    }
    cr_expect_eq(left, "0", "partials left after 6 s");
    cr_expect_eq(metric("duet_partial_uploads_expired_total"), std::to_string(kParts));
}

Test(resumable_limits, untouched_partials_expire_after_the_ttl) {
    boot({"--partial-ttl", "1"});
    std::string r = http(request("POST", "/files/e.bin", "Upload-Complete: ?0\r\n" + kIetf, "abc"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(metric("duet_partial_uploads"), "1");
    std::string list;
    for (int i = 0; i < 60; ++i) {  // the sweep runs each second: bounded polling
        list = t::body_of(http(request("GET", "/uploads")));
        if (list == "[]\n") break;
        usleep(100000);
    }
    cr_expect_eq(list, "[]\n");
    cr_expect_eq(metric("duet_partial_uploads_expired_total"), "1");
    cr_expect_eq(metric("duet_partial_uploads"), "0");
}

// ---- CORS ---------------------------------------------------------------------------------------

Test(resumable_limits, cors_preflight_and_exposed_headers) {
    boot({"--cors", "https://app.example", "--token", "tok"});
    std::string pre =
        "Origin: https://app.example\r\nAccess-Control-Request-Method: PATCH\r\n"
        "Access-Control-Request-Headers: upload-offset, tus-resumable\r\n";
    std::string r = http(request("OPTIONS", "/uploads/0123", pre));
    cr_expect_eq(t::status_of(r), 204, "a preflight needs no token: %s", r.c_str());
    cr_expect_eq(t::header_of(r, "Access-Control-Allow-Origin"), "https://app.example");
    cr_expect(t::header_of(r, "Access-Control-Allow-Methods").find("PATCH") != std::string::npos);
    std::string allowed = t::header_of(r, "Access-Control-Allow-Headers");
    for (const char* h : {"Authorization", "Upload-Offset", "Tus-Resumable", "Upload-Metadata",
                          "If-Match", "Repr-Digest"})
        cr_expect(allowed.find(h) != std::string::npos, "%s not allowed: %s", h, allowed.c_str());
    cr_expect(!t::header_of(r, "Access-Control-Max-Age").empty());
    r = http(request("GET", "/", "Origin: https://app.example\r\n"));
    cr_expect_eq(t::header_of(r, "Access-Control-Allow-Origin"), "https://app.example");
    cr_expect_eq(t::header_of(r, "Vary"), "Origin");
    std::string exposed = t::header_of(r, "Access-Control-Expose-Headers");
    for (const char* h : {"Location", "Upload-Offset", "Upload-Length", "Tus-Resumable",
                          "Upload-Expires", "Repr-Digest"})
        cr_expect(exposed.find(h) != std::string::npos, "%s not exposed", h);
    r = http(request("GET", "/", "Origin: https://evil.example\r\n"));
    cr_expect_eq(t::header_of(r, "Access-Control-Allow-Origin"), "");
    r = http(request("GET", "/uploads", "Origin: https://app.example\r\n"));
    cr_expect_eq(t::status_of(r), 401, "CORS does not replace the token");
    cr_expect_eq(t::header_of(r, "Access-Control-Allow-Origin"), "https://app.example");
}

Test(resumable_limits, no_cors_header_without_the_option) {
    boot();
    std::string r = http(request("OPTIONS", "/uploads",
                                 "Origin: https://app.example\r\nAccess-Control-Request-Method: "
                                 "POST\r\n"));
    cr_expect_eq(t::header_of(r, "Access-Control-Allow-Origin"), "");
    cr_expect_eq(t::header_of(r, "Access-Control-Allow-Methods"), "");
}

// The store removed while an append runs (README "The store can go away"): its last checkpoint
// (on a helper) cannot write the state file into the removed directory, so the answer is an
// error that names the last durable offset, never the bytes received. A mid-append checkpoint
// that fails ends the append at its next bytes the same way.
Test(resumable_limits, store_removed_mid_append_is_an_error_with_the_durable_offset) {
    boot();
    std::string r =
        http(request("POST", "/files/gone.bin", "Upload-Complete: ?0\r\n" + kIetf, "ab"));
    std::string loc = t::header_of(r, "Location");
    cr_assert(!loc.empty(), "%s", r.c_str());
    const std::string data = t::random_bytes(1 << 20, 41);
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(fd, "PATCH " + loc +
                                  " HTTP/1.1\r\nHost: x\r\nUpload-Offset: 2\r\nUpload-Complete: "
                                  "?0\r\nContent-Type: application/partial-upload\r\n"
                                  "Content-Length: " +
                                  num(data.size()) + "\r\n\r\n" + data.substr(0, 1000)));
    // The append has begun once a HEAD from elsewhere has waited for its first checkpoint.
    r = head_until(loc, 1002);
    cr_assert_eq(t::header_of(r, "Upload-Offset"), "1002", "%s", r.c_str());
    t::sh("rm -rf '" + g_dir + "/data'");
    t::send_all(fd, data.substr(1000));
    r = final_response(fd);
    close(fd);
    int st = t::status_of(r);
    cr_expect(st == 500 || st == 503, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "1002", "%s", r.c_str());
}
