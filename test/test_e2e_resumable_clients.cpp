// Real resumable-upload clients against duet: tus-js-client 4.x (installed by test/deps.sh into
// build/npm) in its tus-v1 and ietf-draft-05 modes uploads 100 MiB through a proxy that resets
// the connection three times at random offsets (test/node/tus_upload.js); the stored file must
// have the source's SHA-256. tus-js-client's ietf-draft-05 mode sends
// Upload-Draft-Interop-Version: 6, which duet supports (6 to 8).
#include <criterion/criterion.h>

#include <string>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
using t::teardown;

const char* kNodeModules = "build/npm/node_modules";

std::string sha256sum(const std::string& path) {
    std::string out = t::sh("sha256sum '" + path + "' | cut -c1-64");
    return out.substr(0, 64);
}

// `stream_chunk`: the source is a stream sent in chunks of that many bytes, with no cuts.
void upload_with_tus_js_client(const std::string& protocol, const std::string& name,
                               std::vector<std::string> args = {}, const std::string& token = "",
                               std::size_t stream_chunk = 0) {
    int st = -1;
    t::sh(std::string("test -f ") + kNodeModules + "/tus-js-client/package.json", &st);
    cr_assert_eq(st, 0, "tus-js-client is missing: run sh test/deps.sh");
    std::string dir = t::boot(std::move(args));
    std::string src = dir + "/source.bin";
    // A length that is no multiple of the chunk: the last chunk is short.
    std::string size = stream_chunk ? "10000000" : "104857600";
    t::sh("head -c " + size + " /dev/urandom > '" + src + "'", &st);
    cr_assert_eq(st, 0);
    std::string cuts = stream_chunk ? "0" : "3";
    std::string env = stream_chunk ? "TUS_STREAM_CHUNK=" + std::to_string(stream_chunk) + " " : "";
    std::string out =
        t::sh(env + "NODE_PATH=" + kNodeModules + " timeout 100 node test/node/tus_upload.js " +
                  protocol + " " + std::to_string(g_srv.http_port) + " '" + src + "' " + name +
                  " " + cuts + " " + token + " 2>&1",
              &st);
    cr_assert_eq(st, 0, "tus-js-client (%s) failed: %s", protocol.c_str(), out.c_str());
    cr_expect(out.find("\"ok\":true") != std::string::npos, "%s", out.c_str());
    cr_expect(out.find("\"cuts\":" + cuts) != std::string::npos, "not cut %s times: %s",
              cuts.c_str(), out.c_str());
    cr_expect_eq(sha256sum(g_srv.data_dir + "/" + name), sha256sum(src),
                 "the stored file differs from the source");
    std::string list = t::body_of(t::http(
        g_srv.http_port, "GET /uploads HTTP/1.1\r\nHost: x\r\n" +
                             (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n") +
                             "\r\n"));
    cr_expect_eq(list, "[]\n", "a partial outlived the upload");
}

}  // namespace

TestSuite(resumable_clients, .fini = teardown, .timeout = 150);

Test(resumable_clients, tus_js_client_tus_v1_survives_three_resets) {
    upload_with_tus_js_client("tus-v1", "tus.bin", {"--token", "s3cret"}, "s3cret");
}

Test(resumable_clients, tus_js_client_ietf_draft_05_survives_three_resets) {
    upload_with_tus_js_client("ietf-draft-05", "ietf.bin");
}

// Its last PATCH says Upload-Complete: ?0 at offset = length: reaching the declared length
// completes the upload (as tusd does), so the file is published and no partial is left.
Test(resumable_clients, tus_js_client_ietf_draft_05_stream_in_chunks_is_published) {
    upload_with_tus_js_client("ietf-draft-05", "stream.bin", {}, "", 1u << 20);
}
