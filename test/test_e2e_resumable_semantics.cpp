// Resumable uploads meet issue 9's semantics, black-box: preconditions carried by a partial and
// re-checked at publish on every door (IETF, tus, file-port if= on a cut PUT and on RESUME),
// digests folded from heads and trailers, RESUME/PARTIAL names by PUT's rules, and token checks
// on /uploads counted by the same guessing throttle as /files.
#include <criterion/criterion.h>
#include <sys/stat.h>

#include "resumable_helper.hpp"

using namespace rt;
using t::teardown;

TestSuite(resumable_semantics, .fini = teardown, .timeout = 60);

namespace {

std::string etag_of(const std::string& data) {
    return "\"" + hex_sha256(data) + "\"";
}

std::string put_plain(const std::string& name, const std::string& data) {
    return http(request("PUT", "/files/" + name, "", data));
}

const std::string kAppend = "Content-Type: application/partial-upload\r\n";

}  // namespace

// ---- HTTP: preconditions at creation, re-checked at publish -------------------------------------

Test(resumable_semantics, ietf_if_match_is_a_compare_and_swap_at_publish) {
    boot();
    cr_assert_eq(t::status_of(put_plain("f.bin", "v1")), 201);
    // A wrong If-Match is refused at creation, before any byte.
    std::string r = http(request(
        "POST", "/files/f.bin",
        "If-Match: " + etag_of("nope") + "\r\nUpload-Complete: ?0\r\nUpload-Length: 6\r\n" + kIetf,
        "abc"));
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    cr_expect_eq(t::body_of(http(request("GET", "/uploads"))), "[]\n", "a refused creation kept");

    // The right one: created; then someone else writes the file; the publish loses the swap.
    r = http(request(
        "POST", "/files/f.bin",
        "If-Match: " + etag_of("v1") + "\r\nUpload-Complete: ?0\r\nUpload-Length: 6\r\n" + kIetf,
        "abc"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    std::string loc = t::header_of(r, "Location");
    cr_assert_eq(t::status_of(put_plain("f.bin", "v2")), 200);
    r = http(request("PATCH", loc, "Upload-Offset: 3\r\nUpload-Complete: ?1\r\n" + kAppend + kIetf,
                     "def"));
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    cr_expect_eq(t::body_of(http(request("GET", "/files/f.bin"))), "v2", "the other write lost");
    cr_expect_eq(t::status_of(http(request("HEAD", loc), true)), 404,
                 "a lost swap kept the partial");

    // Unchanged since creation: published over the file it was conditioned on.
    r = http(request(
        "POST", "/files/f.bin",
        "If-Match: " + etag_of("v2") + "\r\nUpload-Complete: ?0\r\nUpload-Length: 6\r\n" + kIetf,
        "abc"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    loc = t::header_of(r, "Location");
    r = http(request("PATCH", loc, "Upload-Offset: 3\r\nUpload-Complete: ?1\r\n" + kAppend + kIetf,
                     "def"));
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::body_of(http(request("GET", "/files/f.bin"))), "abcdef");
}

Test(resumable_semantics, ietf_if_none_match_star_holds_until_publish_across_a_restart) {
    boot();
    std::string r = http(
        request("POST", "/files/n.bin",
                "If-None-Match: *\r\nUpload-Complete: ?0\r\nUpload-Length: 4\r\n" + kIetf, "ab"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    std::string loc = t::header_of(r, "Location");
    restart();  // the precondition is part of the partial's durable state
    cr_assert_eq(t::status_of(put_plain("n.bin", "mine")), 201);
    r = http(request("PATCH", loc, "Upload-Offset: 2\r\nUpload-Complete: ?1\r\n" + kAppend + kIetf,
                     "cd"));
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    cr_expect_eq(t::body_of(http(request("GET", "/files/n.bin"))), "mine");
    // On an existing name it is refused at once.
    r = http(request("PUT", "/files/n.bin", "If-None-Match: *\r\nUpload-Complete: ?1\r\n" + kIetf,
                     "xyz"));
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
}

Test(resumable_semantics, tus_creation_takes_preconditions_too) {
    boot();
    cr_assert_eq(t::status_of(put_plain("t.bin", "old")), 201);
    std::string meta = "Upload-Metadata: filename " + b64("t.bin") + "\r\n";
    std::string r =
        http(request("POST", "/uploads", kTus + meta + "Upload-Length: 3\r\nIf-None-Match: *\r\n"));
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    r = http(request("POST", "/uploads",
                     kTus + meta + "Upload-Length: 3\r\nIf-Match: " + etag_of("old") + "\r\n"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    std::string loc = t::header_of(r, "Location");
    cr_assert_eq(t::status_of(put_plain("t.bin", "changed")), 200);
    r = http(request("PATCH", loc,
                     kTus + "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n",
                     "new"));
    cr_expect_eq(t::status_of(r), 412, "%s", r.c_str());
    cr_expect_eq(t::body_of(http(request("GET", "/files/t.bin"))), "changed");
}

// ---- HTTP: digests ------------------------------------------------------------------------------

Test(resumable_semantics, digests_from_heads_and_trailers_are_checked_at_publish) {
    boot();
    std::string good =
        "sha-256=:" +
        b64(std::string(reinterpret_cast<const char*>(duet::Sha256::of("abcdef").data()), 32)) +
        ":";
    std::string bad = "sha-256=:" + b64(std::string(32, 'x')) + ":";
    // Two digests that disagree at creation: nothing can match them.
    std::string r = http(request("POST", "/files/d.bin",
                                 "Repr-Digest: " + good + "\r\nContent-Digest: " + bad +
                                     "\r\nUpload-Complete: ?1\r\n" + kIetf,
                                 "abcdef"));
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    // A Repr-Digest on an append is of the whole upload: a wrong one fails the publish.
    r = http(request("POST", "/files/d.bin", "Upload-Complete: ?0\r\nUpload-Length: 6\r\n" + kIetf,
                     "abc"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    std::string loc = t::header_of(r, "Location");
    r = http(request(
        "PATCH", loc,
        "Repr-Digest: " + bad + "\r\nUpload-Offset: 3\r\nUpload-Complete: ?1\r\n" + kAppend + kIetf,
        "def"));
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect_eq(t::status_of(http(request("GET", "/files/d.bin"))), 404, "a wrong digest stored");
    // In a chunked trailer: a right one publishes, a wrong one does not.
    for (const std::string& digest : {bad, good}) {
        r = http(request("POST", "/files/d.bin",
                         "Upload-Complete: ?0\r\nUpload-Length: 6\r\n" + kIetf, "abc"));
        cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
        loc = t::header_of(r, "Location");
        int fd = t::connect_port(g_srv.http_port);
        cr_assert(t::send_all(fd, "PATCH " + loc +
                                      " HTTP/1.1\r\nHost: x\r\nUpload-Offset: 3\r\n"
                                      "Upload-Complete: ?1\r\nTransfer-Encoding: chunked\r\n" +
                                      kAppend + kIetf +
                                      "\r\n3\r\ndef\r\n0\r\nRepr-Digest: " + digest + "\r\n\r\n"));
        r = final_response(fd);
        close(fd);
        cr_expect_eq(t::status_of(r), digest == good ? 201 : 400, "%s", r.c_str());
    }
    cr_expect_eq(t::body_of(http(request("GET", "/files/d.bin"))), "abcdef");
}

// ---- file port ----------------------------------------------------------------------------------

Test(resumable_semantics, a_cut_put_keeps_its_if_and_resume_rechecks_it) {
    boot();
    cr_expect_eq(nc("echo 'PUT c.bin 10 if=none'; printf abcd"),
                 "ERR 400 short upload: got 4 of 10 bytes, partial kept\n");
    cr_assert_eq(t::status_of(put_plain("c.bin", "someone else")), 201);
    cr_expect_eq(nc("echo 'RESUME c.bin 10'; printf efghij"),
                 "OK 4\nERR 412 precondition failed\n");
    cr_expect_eq(t::body_of(http(request("GET", "/files/c.bin"))), "someone else");
    cr_expect_eq(nc("echo 'PARTIAL c.bin'"), "OK 0\n", "a lost precondition kept the partial");
}

Test(resumable_semantics, resume_takes_if_checked_now_and_at_publish) {
    boot();
    cr_assert_eq(t::status_of(put_plain("r.bin", "first")), 201);
    // False now: refused before any byte, and the session closes (the bytes would follow).
    cr_expect_eq(nc("echo 'RESUME r.bin 3 if=none'; printf xyz"), "ERR 412 precondition failed\n");
    // True now, false by the time the last byte is in: the swap is lost.
    int fd = t::connect_port(g_srv.files_port);
    cr_expect_eq(files_cmd(fd, "RESUME r.bin 3 if=" + hex_sha256("first")), "OK 0");
    cr_assert_eq(t::status_of(put_plain("r.bin", "second")), 200);
    cr_assert(t::send_all(fd, "xyz"));
    cr_expect_eq(t::read_line(fd), "ERR 412 precondition failed");
    cr_expect_eq(files_cmd(fd, "RESUME r.bin 3 if=" + hex_sha256("second")), "OK 0");
    cr_assert(t::send_all(fd, "xyz"));
    cr_expect_eq(t::read_line(fd), "OK 3 " + hex_sha256("xyz"));
    close(fd);
}

Test(resumable_semantics, resume_and_partial_read_names_like_put) {
    boot();
    int fd = t::connect_port(g_srv.files_port);
    cr_expect_eq(files_cmd(fd, "PARTIAL my file.bin"),
                 "ERR 400 invalid file name: a space must be written %20 on this port");
    cr_expect_eq(files_cmd(fd, "PARTIAL .hidden"),
                 "ERR 400 invalid file name: must not start with '.'");
    cr_expect_eq(files_cmd(fd, "RESUME my file.bin 10"),
                 "ERR 400 invalid file name: a space must be written %20 on this port");
    cr_expect(t::peer_closed(fd, 5000), "a refused RESUME left the session open");
    close(fd);
    fd = t::connect_port(g_srv.files_port);
    cr_expect_eq(files_cmd(fd, "RESUME a.bin 3 if=maybe"),
                 "ERR 400 if= takes a SHA256 (64 hex digits) or none");
    close(fd);
}

// ---- token --------------------------------------------------------------------------------------

Test(resumable_semantics, wrong_tokens_on_uploads_are_counted_and_throttled) {
    boot({"--token", "right"});
    int fd = t::connect_port(g_srv.http_port);
    for (int i = 0; i < 6; ++i) {
        cr_assert(t::send_all(fd, request("GET", "/uploads", "Authorization: Bearer wrong\r\n")));
        std::string r = t::read_response(fd);
        cr_expect_eq(t::status_of(r), 401, "%s", r.c_str());
    }
    close(fd);
    cr_expect_eq(metric("duet_auth_failures_total"), "6");
    cr_expect_eq(metric("duet_auth_throttled_total"), "1", "the sixth guess was not delayed");
}

// ---- Every door publishes files alike --------------------------------------------------------

// A file published by HTTP PUT, an IETF upload, a tus upload, a file-port PUT and a RESUME gets
// the same permission bits (0644 less the umask), whatever door it came through.
Test(resumable_semantics, every_door_publishes_the_same_mode) {
    boot();
    cr_assert_eq(t::status_of(put_plain("put.bin", "p")), 201);
    std::string r = http(request("PUT", "/files/ietf.bin", kIetf + "Upload-Complete: ?1\r\n", "i"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    std::string meta = "Upload-Metadata: filename " + b64("tus.bin") + "\r\n";
    r = http(request("POST", "/uploads", kTus + meta + "Upload-Length: 1\r\n"));
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    r = http(request("PATCH", t::header_of(r, "Location"),
                     kTus + "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n",
                     "t"));
    cr_assert_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_assert_eq(nc("echo 'PUT port.bin 1'; printf x").substr(0, 3), "OK ");
    cr_assert_eq(nc("echo 'PUT res.bin 2'; printf a").substr(0, 7), "ERR 400");
    cr_assert_eq(nc("echo 'RESUME res.bin 2'; printf b").substr(0, 3), "OK ");
    struct stat put {};
    cr_assert_eq(::stat((g_dir + "/data/put.bin").c_str(), &put), 0);
    for (const char* name : {"ietf.bin", "tus.bin", "port.bin", "res.bin"}) {
        struct stat st {};
        cr_assert_eq(::stat((g_dir + "/data/" + name).c_str(), &st), 0, "%s missing", name);
        cr_expect_eq(st.st_mode & 07777, put.st_mode & 07777, "%s has mode %o, PUT's is %o", name,
                     unsigned(st.st_mode & 07777), unsigned(put.st_mode & 07777));
    }
    mode_t mask = ::umask(0);
    ::umask(mask);  // duet inherits the test's umask
    cr_expect_eq(put.st_mode & 07777, 0644u & ~unsigned(mask), "PUT made mode %o",
                 unsigned(put.st_mode & 07777));
}
