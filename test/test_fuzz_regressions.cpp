// Fuzz findings kept as tests, and the fuzz properties run over the committed seed corpus, so
// `make test` checks them even where clang/libFuzzer is missing. The three fuzz targets are
// compiled in here under their own names; each aborts (a crashing test) when a property fails.
#include <criterion/criterion.h>
#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duet/fileport/file_proto.hpp"
#include "duet/http/http_body.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/http/http_parser.hpp"
#include "duet/store/store.hpp"
#include "helper.hpp"

#define LLVMFuzzerTestOneInput fuzz_http_head_one
#undef CHECK
namespace fz_head {
#include "fuzz/fuzz_http_head.cpp"
}
#undef LLVMFuzzerTestOneInput
#undef CHECK

#define LLVMFuzzerTestOneInput fuzz_chunked_one
namespace fz_chunked {
#include "fuzz/fuzz_chunked.cpp"
}
#undef LLVMFuzzerTestOneInput
#undef CHECK

#define LLVMFuzzerTestOneInput fuzz_file_cmd_one
namespace fz_cmd {
#include "fuzz/fuzz_file_cmd.cpp"
}
#undef LLVMFuzzerTestOneInput
#undef CHECK

namespace {

using Target = int (*)(const std::uint8_t*, std::size_t);

void run(Target f, const std::string& input) {
    f(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

// Runs every file of test/fuzz/corpus/<name>/ through the target; returns how many.
int run_corpus(Target f, const std::string& name) {
    std::string dir = "test/fuzz/corpus/" + name;
    DIR* d = opendir(dir.c_str());
    cr_assert(d, "no seed corpus at %s (run from the repository root)", dir.c_str());
    int n = 0;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        run(f, t::read_file(dir + "/" + e->d_name));
        ++n;
    }
    closedir(d);
    return n;
}

duet::ParseResult parse(const std::string& s, duet::Request& req) {
    return duet::parse_request(s.data(), s.size(), req);
}

}  // namespace

TestSuite(fuzz_regressions, .timeout = 60);

Test(fuzz_regressions, seed_corpus_keeps_the_fuzz_properties) {
    cr_expect_gt(run_corpus(fz_head::fuzz_http_head_one, "fuzz_http_head"), 5);
    cr_expect_gt(run_corpus(fz_chunked::fuzz_chunked_one, "fuzz_chunked"), 3);
    cr_expect_gt(run_corpus(fz_cmd::fuzz_file_cmd_one, "fuzz_file_cmd"), 3);
}

// fuzz_http_head, crash-fdc6967bf9bbb5487f9af836b746014b5181b7ff: an absolute-form target
// without a path. Request::path became the string literal "/", not a view into the buffer as
// http_parser.hpp promises ("Every view it writes points into the caller's buffer"). Harmless
// (static storage, never dangling); the fuzzer now allows exactly this case. This pins the
// behaviour the router relies on: the path is "/" and the request is otherwise sound.
Test(fuzz_regressions, absolute_form_without_path_gets_root_path) {
    const std::string in =
        "GET http://localho=0 HTTP/1.1\r\nHost: localhost:80\r\n"
        "If-None-Match: \"abc\", W/\"def\"\r\n\r\n";
    run(fz_head::fuzz_http_head_one, in);
    static duet::Request req;
    duet::ParseResult r = parse(in, req);
    cr_assert_eq(int(r.status), int(duet::ParseStatus::Complete));
    cr_expect_eq(std::string(req.path), "/");
    cr_expect_eq(std::string(req.target), "http://localho=0");
    for (const char* t : {"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
                          "GET http://h?x=/y HTTP/1.1\r\nHost: h\r\n\r\n",
                          "GET https://h#frag HTTP/1.1\r\nHost: h\r\n\r\n"}) {
        run(fz_head::fuzz_http_head_one, t);
        r = parse(t, req);
        cr_expect_eq(int(r.status), int(duet::ParseStatus::Complete), "%s", t);
        cr_expect_eq(std::string(req.path), "/", "%s", t);
    }
}

// The limits are where a re-parse on a growing buffer could change its answer: run the
// properties right at each boundary.
Test(fuzz_regressions, head_limits_answer_the_same_whole_and_split) {
    for (std::size_t len : {8190u, 8191u, 8192u, 8193u, 8194u}) {
        std::string target = "/" + std::string(len - 14, 'a');  // "GET " + target + " HTTP/1.1"
        std::string line = "GET " + target + " HTTP/1.1";
        cr_assert_eq(line.size(), len);
        for (const char* eol : {"\r\n", "\n"}) {
            std::string in = line + eol + "Host: x\r\n\r\n";
            run(fz_head::fuzz_http_head_one, in);
            static duet::Request req;
            duet::ParseResult r = parse(in, req);
            if (len <= duet::kMaxRequestLine)
                cr_expect_eq(int(r.status), int(duet::ParseStatus::Complete), "line of %zu", len);
            else
                cr_expect_eq(r.http_status, 414, "line of %zu", len);
            // Every prefix is Incomplete or already the final answer.
            for (std::size_t cut = len - 3; cut <= len + 2 && cut < in.size(); ++cut) {
                duet::ParseResult p = duet::parse_request(in.data(), cut, req);
                cr_expect(p.status == duet::ParseStatus::Incomplete ||
                              (p.status == r.status && p.http_status == r.http_status),
                          "line of %zu cut at %zu: %d/%d vs %d/%d", len, cut, int(p.status),
                          p.http_status, int(r.status), r.http_status);
            }
        }
    }
    // Head just under and over 32 KiB, and 100 / 101 fields.
    for (std::size_t pad : {32700u, 32800u}) {
        std::string in = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(pad, 'v') + "\r\n\r\n";
        run(fz_head::fuzz_http_head_one, in);
    }
    for (int fields : {99, 100, 101}) {
        std::string in = "GET / HTTP/1.1\r\nHost: x\r\n";
        for (int i = 1; i < fields; ++i) in += "X-" + std::to_string(i) + ": v\r\n";
        in += "\r\n";
        run(fz_head::fuzz_http_head_one, in);
        static duet::Request req;
        duet::ParseResult r = parse(in, req);
        if (fields <= 100)
            cr_expect_eq(int(r.status), int(duet::ParseStatus::Complete), "%d fields", fields);
        else
            cr_expect_eq(r.http_status, 431, "%d fields", fields);
    }
}

Test(fuzz_regressions, chunked_limits_answer_the_same_whole_and_split) {
    for (std::size_t ext : {4094u, 4095u, 4096u, 4097u})
        run(fz_chunked::fuzz_chunked_one,
            "5;" + std::string(ext - 1, 'e') + "\r\nhello\r\n0\r\n\r\n");
    for (std::size_t tr : {8188u, 8189u, 8190u, 8191u, 8192u, 8193u})
        run(fz_chunked::fuzz_chunked_one, "0\r\nT:" + std::string(tr - 3, 't') + "\r\n\r\n");
    for (const char* in : {"fffffffffffffff\r\n", "ffffffffffffffff\r\n", "ffffffffffffffffff\r\n",
                           "000000000000000000001\r\nx\r\n0\r\n\r\n", "0\r\n\r\nleft over",
                           "1 ;a\r\nx\r\n0\r\n\r\n", "1 \r\nx\r\n0\r\n\r\n", "0\r\n\r\r\n"})
        run(fz_chunked::fuzz_chunked_one, in);
}

Test(fuzz_regressions, command_line_limits_answer_the_same_whole_and_split) {
    for (std::size_t len : {4094u, 4095u, 4096u, 4097u}) {
        std::string line = "PING" + std::string(len - 5, ' ') + "\n";
        cr_assert_eq(line.size(), len);
        run(fz_cmd::fuzz_file_cmd_one, line + "LIST\n");
        run(fz_cmd::fuzz_file_cmd_one, "PING " + std::string(len - 6, 'x') + "\r\nQUIT\n");
    }
    run(fz_cmd::fuzz_file_cmd_one, std::string("PUT a\0b 5\n", 10));
    run(fz_cmd::fuzz_file_cmd_one, "PUT a 99999999999999999999 " + std::string(64, 'f') + "\n");
    run(fz_cmd::fuzz_file_cmd_one, "GET a 1 2 3 4 5 6 7 8 9 10\n");
    run(fz_cmd::fuzz_file_cmd_one, "");
    run(fz_cmd::fuzz_file_cmd_one, "\n\n\r\n");
}
