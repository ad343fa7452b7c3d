// The one strict version of each check the black-box tests share (see helper.hpp).
#include <dirent.h>

#include <algorithm>
#include <cstdlib>

#include "duet/core/sha256.hpp"
#include "helper.hpp"

namespace t {

// The digest sidecar directory (store_meta), and the partial-upload directory of resumable uploads
// (issue 11). Temporary files (".duet-tmp-*") are deliberately not here.
const std::vector<std::string> kBookkeeping = {".duet-meta", ".duet-partial"};

std::vector<std::string> store_listing(const std::string& data_dir) {
    std::vector<std::string> out;
    DIR* d = opendir(data_dir.c_str());
    if (!d) return {"<cannot open " + data_dir + ">"};
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        if (std::find(kBookkeeping.begin(), kBookkeeping.end(), n) != kBookkeeping.end()) continue;
        out.push_back(n);
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

std::string joined(const std::vector<std::string>& names) {
    std::string s;
    for (auto& n : names) s += (s.empty() ? "" : " ") + n;
    return s;
}

bool is_json_error(const std::string& resp, const std::string& text) {
    std::string body = body_of(resp);
    const std::string open = "{\"error\":\"";
    if (header_of(resp, "Content-Type") != "application/json") return false;
    if (header_of(resp, "Content-Length") != std::to_string(body.size())) return false;
    // A JSON object with one string member: starts and ends as such, and the sentence is not
    // empty. A trailing newline is allowed.
    std::string b = body;
    if (!b.empty() && b.back() == '\n') b.pop_back();
    if (b.size() < open.size() + 3 || b.rfind(open, 0) != 0 || b.compare(b.size() - 2, 2, "\"}"))
        return false;
    return text.empty() || body.find(text) != std::string::npos;
}

std::string sha256_hex(const std::string& data) {
    return duet::to_hex(duet::Sha256::of(data));
}

std::string sha256_b64(const std::string& data) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    auto d = duet::Sha256::of(data);
    std::string bytes(reinterpret_cast<const char*>(d.data()), d.size());
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        unsigned v = unsigned(static_cast<unsigned char>(bytes[i])) << 16;
        if (i + 1 < bytes.size()) v |= unsigned(static_cast<unsigned char>(bytes[i + 1])) << 8;
        if (i + 2 < bytes.size()) v |= unsigned(static_cast<unsigned char>(bytes[i + 2]));
        out += abc[(v >> 18) & 63];
        out += abc[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? abc[v & 63] : '=';
    }
    return out;
}

double metric_value(const std::string& body, const std::string& series) {
    std::string needle = "\n" + series + " ";
    std::size_t at = ("\n" + body).find(needle);
    if (at == std::string::npos) return -1;
    return std::strtod(body.c_str() + at + series.size() + 1, nullptr);
}

}  // namespace t
