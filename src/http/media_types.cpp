// The types stored files are served with (README "The page"): common ones by extension so that
// images, video, audio, PDF and text open in the browser; never one a browser would run as a
// document on duet's origin (HTML, SVG, XML, ...): those, and anything unknown, are downloads.
#include <cctype>

#include "duet/http/page.hpp"
#include "duet/store/names.hpp"

namespace duet {
namespace {

struct Row {
    std::string_view ext, type;
};
// Lower-case extensions. Deliberately absent: html, htm, xhtml, svg, xml, xsl, js, mjs, css,
// wasm, swf, and everything else a browser executes or interprets with script.
constexpr Row kTypes[] = {
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/plain; charset=utf-8"},
    {"log", "text/plain; charset=utf-8"},
    {"csv", "text/plain; charset=utf-8"},
    {"json", "application/json"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"ico", "image/x-icon"},
    {"mp4", "video/mp4"},
    {"m4v", "video/mp4"},
    {"webm", "video/webm"},
    {"ogv", "video/ogg"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"m4a", "audio/mp4"},
    {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},
    {"opus", "audio/ogg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
};

}  // namespace

MediaType stored_media_type(std::string_view name) {
    std::size_t slash = name.rfind('/');
    if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
    std::size_t dot = name.rfind('.');
    if (dot != std::string_view::npos && dot + 1 < name.size() && name.size() - dot <= 6) {
        char ext[8] = {};
        std::string_view e = name.substr(dot + 1);
        for (std::size_t i = 0; i < e.size(); ++i)
            ext[i] = char(std::tolower(static_cast<unsigned char>(e[i])));
        std::string_view lower(ext, e.size());
        for (const Row& r : kTypes)
            if (r.ext == lower) return {r.type, false};
    }
    return {"application/octet-stream", true};
}

std::string attachment_disposition(std::string_view filename) {
    std::string plain(filename);
    for (char& c : plain)
        if (c == '"' || c == '\\' || static_cast<unsigned char>(c) >= 0x80) c = '_';
    return "attachment; filename=\"" + plain + "\"; filename*=UTF-8''" + url_encode(filename);
}

}  // namespace duet
