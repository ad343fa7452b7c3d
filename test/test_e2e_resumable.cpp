// Resumable uploads, black-box (README "Resumable uploads", §3 RESUME/PARTIAL): the IETF draft
// over raw sockets, tus 1.0.0, the file port with the real nc, and crossing doors. Bad input,
// token, disk full, expiry and CORS: test_e2e_resumable_limits.cpp.
#include <criterion/criterion.h>

#include "resumable_helper.hpp"

using namespace rt;
using t::teardown;

TestSuite(resumable, .fini = teardown, .timeout = 60);

// ---- IETF draft ---------------------------------------------------------------------------------

Test(resumable, ietf_creation_cut_at_40_percent_then_head_and_patch_publishes) {
    boot();
    const std::string data = t::random_bytes(1 << 20, 1);
    std::size_t cut = data.size() * 4 / 10;
    std::string loc = ietf_cut_creation("c.bin", data, cut);
    std::string h = head_until(loc, cut);
    cr_assert_eq(t::status_of(h), 204, "%s", h.c_str());
    cr_expect_eq(t::header_of(h, "Upload-Offset"), num(cut), "%s", h.c_str());
    cr_expect_eq(t::header_of(h, "Upload-Length"), num(data.size()));
    cr_expect_eq(t::header_of(h, "Upload-Complete"), "?0");
    cr_expect_eq(t::header_of(h, "Cache-Control"), "no-store");
    cr_expect(t::header_of(h, "Upload-Limit").find("max-age=") != std::string::npos);
    cr_expect_eq(t::status_of(http(request("GET", "/files/c.bin"))), 404,
                 "visible before it completed");
    std::string r = http(request("PATCH", loc,
                                 "Upload-Offset: " + num(cut) +
                                     "\r\nUpload-Complete: ?1\r\nContent-Type: "
                                     "application/partial-upload\r\n" +
                                     kIetf,
                                 data.substr(cut)));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Complete"), "?1");
    cr_expect(t::body_of(r).find(hex_sha256(data)) != std::string::npos, "%s", r.c_str());
    cr_expect(t::body_of(http(request("GET", "/files/c.bin"))) == data);
    cr_expect_eq(t::body_of(http(request("GET", "/uploads"))), "[]\n");
    cr_expect_eq(t::status_of(http(request("HEAD", loc), true)), 404,
                 "the upload outlived its end");
}

Test(resumable, ietf_wrong_offset_is_409_with_the_right_offset) {
    boot();
    std::string r = http(request("POST", "/files/w.bin",
                                 "Upload-Complete: ?0\r\nUpload-Length: 3000\r\n" + kIetf,
                                 std::string(1000, 'w')));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    std::string loc = t::header_of(r, "Location");
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "1000");
    cr_expect_eq(t::header_of(r, "Upload-Complete"), "?0");
    r = http(request("PATCH", loc,
                     "Upload-Offset: 500\r\nUpload-Complete: ?0\r\nContent-Type: "
                     "application/partial-upload\r\n",
                     std::string(10, 'x')));
    cr_assert_eq(t::status_of(r), 409, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "1000");
    cr_expect_eq(t::header_of(r, "Content-Type"), "application/problem+json");
    cr_expect(t::body_of(r).find("mismatching-upload-offset") != std::string::npos);
    // The rest in two appends, the last one completing it.
    r = http(request("PATCH", loc,
                     "Upload-Offset: 1000\r\nUpload-Complete: ?0\r\nContent-Type: "
                     "application/partial-upload\r\n",
                     std::string(1000, 'w')));
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "2000");
    r = http(request("PATCH", loc,
                     "Upload-Offset: 2000\r\nUpload-Complete: ?1\r\nContent-Type: "
                     "application/partial-upload\r\n",
                     std::string(1000, 'w')));
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::body_of(http(request("GET", "/files/w.bin"))), std::string(3000, 'w'));
}

Test(resumable, ietf_delete_cancels) {
    boot();
    std::string r = http(request("POST", "/files/d.bin", "Upload-Complete: ?0\r\n" + kIetf, "abc"));
    std::string loc = t::header_of(r, "Location");
    cr_assert(!loc.empty(), "%s", r.c_str());
    cr_expect_eq(t::status_of(http(request("DELETE", loc))), 204);
    cr_expect_eq(t::status_of(http(request("HEAD", loc), true)), 404);
    cr_expect_eq(t::body_of(http(request("GET", "/uploads"))), "[]\n");
    cr_expect_eq(t::status_of(http(request("GET", "/files/d.bin"))), 404);
}

Test(resumable, no_or_unknown_interop_version_is_an_ordinary_put) {
    boot();
    for (std::string version : {"", "Upload-Draft-Interop-Version: 5\r\n"}) {
        int fd = t::connect_port(g_srv.http_port);
        cr_assert(t::send_all(
            fd, request("PUT", "/files/o.bin", "Upload-Complete: ?1\r\n" + version, "plain")));
        std::string r = t::read_response(fd);
        close(fd);
        cr_expect(t::status_of(r) == 201 || t::status_of(r) == 200, "no final answer first: %s",
                  r.c_str());
        cr_expect(r.find("104") == std::string::npos, "%s", r.c_str());
    }
    cr_expect_eq(t::body_of(http(request("GET", "/uploads"))), "[]\n");
    cr_expect_eq(t::body_of(http(request("GET", "/files/o.bin"))), "plain");
}

Test(resumable, ietf_progress_104s_report_durable_offsets) {
    boot();
    // Past 16 MiB + the 48 MiB that may wait behind a running checkpoint: reading pauses at
    // 64 MiB until the first checkpoint is done, so its 104 comes before the upload ends.
    const std::string data = t::random_bytes(72 << 20, 2);
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(
        fd, "PUT /files/p.bin HTTP/1.1\r\nHost: x\r\nContent-Length: " + num(data.size()) +
                "\r\nUpload-Complete: ?1\r\n" + kIetf + "\r\n" + data));
    std::vector<std::string> interims;
    std::string r = final_response(fd, &interims);
    close(fd);
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_assert_geq(interims.size(), 2u, "no progress 104 during a 72 MiB upload");
    cr_expect(!t::header_of(interims[0], "Location").empty());
    std::uint64_t last = 0;
    for (std::size_t i = 1; i < interims.size(); ++i) {
        std::string off = t::header_of(interims[i], "Upload-Offset");
        cr_expect(!off.empty() && t::header_of(interims[i], "Location").empty(), "%s",
                  interims[i].c_str());
        std::uint64_t v = std::strtoull(off.c_str(), nullptr, 10);
        cr_expect(v > last && v <= data.size(), "offsets %llu then %llu", (unsigned long long)last,
                  (unsigned long long)v);
        last = v;
    }
    cr_expect(t::body_of(r).find(hex_sha256(data)) != std::string::npos);
}

Test(resumable, ietf_inconsistent_lengths_are_400_problems) {
    boot();
    std::string r = http(request("PUT", "/files/i.bin",
                                 "Upload-Complete: ?1\r\nUpload-Length: 10\r\n" + kIetf, "12345"));
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect(t::body_of(r).find("inconsistent-upload-length") != std::string::npos);
    r = http(request("POST", "/files/i.bin", "Upload-Complete: ?0\r\nUpload-Length: 10\r\n" + kIetf,
                     "12345"));
    std::string loc = t::header_of(r, "Location");
    cr_assert(!loc.empty(), "%s", r.c_str());
    r = http(request("PATCH", loc,
                     "Upload-Offset: 5\r\nUpload-Complete: ?0\r\nUpload-Length: 11\r\n"
                     "Content-Type: application/partial-upload\r\n",
                     "x"));
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect(t::body_of(r).find("inconsistent-upload-length") != std::string::npos);
}

Test(resumable, options_on_a_file_announces_upload_limit) {
    boot({"--max-upload", "1000000"});
    std::string r = http(request("OPTIONS", "/files/x.bin"));
    cr_expect_eq(t::status_of(r), 204);
    cr_expect(t::header_of(r, "Upload-Limit").find("max-size=1000000") != std::string::npos, "%s",
              r.c_str());
}

// ---- tus 1.0.0 ----------------------------------------------------------------------------------

Test(resumable, tus_options_create_head_patch_checksum) {
    boot({"--max-upload", "5000"});
    std::string r = http(request("OPTIONS", "/uploads"));
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Tus-Version"), "1.0.0");
    cr_expect_eq(t::header_of(r, "Tus-Resumable"), "1.0.0");
    std::string ext = t::header_of(r, "Tus-Extension");
    for (const char* e :
         {"creation", "creation-with-upload", "termination", "expiration", "checksum"})
        cr_expect(ext.find(e) != std::string::npos, "%s missing: %s", e, ext.c_str());
    cr_expect_eq(t::header_of(r, "Tus-Max-Size"), "5000");
    cr_expect_eq(t::header_of(r, "Tus-Checksum-Algorithm"), "sha256");

    std::string meta = "Upload-Metadata: filename " + b64("t.txt") + "\r\n";
    r = http(request("POST", "/uploads", "Upload-Length: 10\r\n" + meta));
    cr_expect_eq(t::status_of(r), 412, "no Tus-Resumable: %s", r.c_str());
    r = http(request("POST", "/uploads", "Tus-Resumable: 0.2.2\r\nUpload-Length: 10\r\n" + meta));
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Tus-Version"), "1.0.0");
    r = http(request("POST", "/uploads", kTus + "Upload-Length: 10\r\n" + meta));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect(!t::header_of(r, "Upload-Expires").empty());
    std::string loc = t::header_of(r, "Location");
    cr_assert(loc.rfind("/uploads/", 0) == 0);

    r = http(request("HEAD", loc, kTus), true);
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "0");
    cr_expect_eq(t::header_of(r, "Upload-Length"), "10");
    cr_expect_eq(t::header_of(r, "Cache-Control"), "no-store");

    r = http(
        request("PATCH", loc, kTus + "Upload-Offset: 0\r\nContent-Type: text/plain\r\n", "0123"));
    cr_expect_eq(t::status_of(r), 415, "%s", r.c_str());
    std::string octets = "Content-Type: application/offset+octet-stream\r\n";
    r = http(request("PATCH", loc, kTus + octets + "Upload-Offset: 0\r\n", "0123"));
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "4");
    duet::Digest d = duet::Sha256::of("456789");
    std::string right =
        "Upload-Checksum: sha256 " + duet::base64_encode(d.data(), d.size()) + "\r\n";
    duet::Digest w = duet::Sha256::of("nope");
    std::string wrong =
        "Upload-Checksum: sha256 " + duet::base64_encode(w.data(), w.size()) + "\r\n";
    r = http(request("PATCH", loc, kTus + octets + "Upload-Offset: 4\r\n" + wrong, "456789"));
    cr_expect_eq(t::status_of(r), 460, "%s", r.c_str());
    r = http(request("HEAD", loc, kTus), true);
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "4", "bytes of a failed checksum were kept");
    r = http(request("PATCH", loc,
                     kTus + octets + "Upload-Offset: 4\r\nUpload-Checksum: md5 AAAA\r\n",
                     "456789"));
    cr_expect_eq(t::status_of(r), 400, "an unsupported algorithm: %s", r.c_str());
    r = http(request("PATCH", loc, kTus + octets + "Upload-Offset: 4\r\n" + right, "456789"));
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "10");
    cr_expect_eq(t::body_of(http(request("GET", "/files/t.txt"))), "0123456789");
}

Test(resumable, tus_creation_with_upload_and_bad_creations) {
    boot({"--max-upload", "100"});
    std::string octets = "Content-Type: application/offset+octet-stream\r\n";
    std::string r = http(request(
        "POST", "/uploads",
        kTus + octets + "Upload-Length: 5\r\nUpload-Metadata: filename " + b64("w.txt") + "\r\n",
        "whole"));
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "5");
    cr_expect_eq(t::body_of(http(request("GET", "/files/w.txt"))), "whole");
    r = http(request("POST", "/uploads", kTus + "Upload-Length: 5\r\n"));
    cr_expect_eq(t::status_of(r), 400, "no file name: %s", r.c_str());
    r = http(
        request("POST", "/uploads",
                kTus + "Upload-Length: 5\r\nUpload-Metadata: filename " + b64("../x") + "\r\n"));
    cr_expect_eq(t::status_of(r), 400, "a bad file name: %s", r.c_str());
    r = http(
        request("POST", "/uploads",
                kTus + "Upload-Length: 101\r\nUpload-Metadata: filename " + b64("x") + "\r\n"));
    cr_expect_eq(t::status_of(r), 413, "over --max-upload: %s", r.c_str());
    r = http(
        request("POST", "/uploads",
                kTus + "Upload-Defer-Length: 1\r\nUpload-Metadata: filename " + b64("x") + "\r\n"));
    cr_expect_eq(t::status_of(r), 400, "deferred length is not offered: %s", r.c_str());
}

// ---- file port and crossing doors ---------------------------------------------------------------

Test(resumable, nc_put_cut_at_30_percent_then_partial_and_resume) {
    boot();
    const std::string data = t::random_bytes(1000000, 3);
    std::string file = g_dir + "/n.bin";
    cr_assert(t::write_file(file, data));
    std::string size = num(data.size());
    std::string out = nc("echo 'PUT n.bin " + size + "'; head -c 300000 '" + file + "'");
    cr_expect_eq(out, "ERR 400 short upload: got 300000 of 1000000 bytes, partial kept\n");
    out = nc("echo 'PARTIAL n.bin'");
    cr_assert(out.rfind("OK 1\nn.bin 300000 1000000 ", 0) == 0, "%s", out.c_str());
    out = nc("echo 'RESUME n.bin " + size + "'; tail -c +300001 '" + file + "'");
    cr_expect_eq(out, "OK 300000\nOK 1000000 " + hex_sha256(data) + "\n");
    cr_expect(t::read_file(g_srv.data_dir + "/n.bin") == data);
    cr_expect_eq(nc("echo PARTIAL"), "OK 0\n");
    cr_expect_eq(metric("duet_partial_uploads_resumed_total"), "1");
}

Test(resumable, resume_without_a_partial_is_an_ordinary_sized_put) {
    boot();
    int fd = t::connect_port(g_srv.files_port);
    cr_expect_eq(files_cmd(fd, "RESUME r.txt 5"), "OK 0");
    cr_assert(t::send_all(fd, "hello"));
    cr_expect_eq(t::read_line(fd), "OK 5 " + hex_sha256("hello"));
    cr_expect_eq(files_cmd(fd, "PING"), "OK pong", "the session goes on");
    cr_expect_eq(files_cmd(fd, "RESUME r.txt 5 " + hex_sha256("HELLO")), "OK 0");
    cr_assert(t::send_all(fd, "hello"));
    cr_expect_eq(t::read_line(fd), "ERR 422 digest mismatch");
    close(fd);
}

Test(resumable, cross_door_file_port_start_tus_finish) {
    boot();
    const std::string data = t::random_bytes(200000, 4);
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(fd, "PUT x.bin 200000\n" + data.substr(0, 50000)));
    shutdown(fd, SHUT_WR);
    cr_expect_eq(t::read_line(fd), "ERR 400 short upload: got 50000 of 200000 bytes, partial kept");
    close(fd);
    std::string list = t::body_of(http(request("GET", "/uploads")));
    std::size_t at = list.find("\"id\":\"");
    cr_assert(at != std::string::npos, "%s", list.c_str());
    std::string id = list.substr(at + 6, 32);
    cr_expect(list.find("\"offset\":50000") != std::string::npos, "%s", list.c_str());
    std::string r = http(request("PATCH", "/uploads/" + id,
                                 kTus + "Content-Type: application/offset+octet-stream\r\n"
                                        "Upload-Offset: 50000\r\n",
                                 data.substr(50000)));
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    fd = t::connect_port(g_srv.files_port);
    cr_expect(files_cmd(fd, "STAT x.bin").rfind("OK 200000 " + hex_sha256(data), 0) == 0);
    close(fd);
}

Test(resumable, cross_door_ietf_start_file_port_finish) {
    boot();
    const std::string data = t::random_bytes(300000, 5);
    std::string loc = ietf_cut_creation("y.bin", data, 120000);
    head_until(loc, 120000);
    int fd = t::connect_port(g_srv.files_port);
    cr_expect_eq(files_cmd(fd, "RESUME y.bin 300000"), "OK 120000");
    cr_assert(t::send_all(fd, data.substr(120000)));
    cr_expect_eq(t::read_line(fd), "OK 300000 " + hex_sha256(data));
    close(fd);
    cr_expect(t::body_of(http(request("GET", "/files/y.bin"))) == data);
}

Test(resumable, partials_survive_a_restart) {
    boot();
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(fd, "PUT k.bin 10\nabcd"));
    shutdown(fd, SHUT_WR);
    cr_expect(t::read_line(fd).rfind("ERR 400 short upload", 0) == 0);
    close(fd);
    restart();
    cr_expect(nc("echo 'PARTIAL k.bin'").rfind("OK 1\nk.bin 4 10 ", 0) == 0);
    cr_expect_eq(nc("echo 'RESUME k.bin 10'; printf efghij"),
                 "OK 4\nOK 10 " + hex_sha256("abcdefghij") + "\n");
}

// A stop (SIGTERM) while an append's checkpoints run on helpers finishes them (README "Stop and
// reload": a stop finishes in-flight work): the append is answered with its whole offset, and a
// restart finds the partial there. 20 MiB crosses a mid-append checkpoint; the last one starts as
// the body ends.
Test(resumable, stop_with_a_checkpoint_in_flight_finishes_it) {
    boot();
    std::string r = http(request("POST", "/files/s.bin", "Upload-Complete: ?0\r\n" + kIetf, "ab"));
    std::string loc = t::header_of(r, "Location");
    cr_assert(!loc.empty(), "%s", r.c_str());
    const std::string data = t::random_bytes(20 << 20, 31);
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(fd, request("PATCH", loc,
                                      "Upload-Offset: 2\r\nUpload-Complete: ?0\r\nContent-Type: "
                                      "application/partial-upload\r\n",
                                      data)));
    cr_assert_eq(kill(g_srv.pid, SIGTERM), 0);
    r = final_response(fd);
    close(fd);
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Upload-Offset"), num(2 + data.size()), "%s", r.c_str());
    cr_assert_eq(t::wait_exit(g_srv, 20000), 0, "%s", g_srv.err_log.c_str());
    if (g_srv.err_fd >= 0) close(g_srv.err_fd);
    g_srv = t::Duet{};
    cr_assert(t::start(g_srv, {}, g_dir + "/data"), "%s", g_srv.err_log.c_str());
    cr_expect_eq(t::header_of(http(request("HEAD", loc), true), "Upload-Offset"),
                 num(2 + data.size()));
    r = http(request("PATCH", loc,
                     "Upload-Offset: " + num(2 + data.size()) +
                         "\r\nUpload-Complete: ?1\r\nContent-Type: application/partial-upload\r\n",
                     "z"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect(t::read_file(g_dir + "/data/s.bin") == "ab" + data + "z");
}
