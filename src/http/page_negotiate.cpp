// Content negotiation for the page (README "The page"): Accept and Accept-Encoding, read as
// RFC 9110 §12.5 says, as far as duet needs them.
#include <cstdlib>

#include "duet/core/text.hpp"
#include "duet/http/page.hpp"

namespace duet {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls f(value, q) for each member of a comma list "a;q=0.5, b"; q in thousandths.
template <class F>
void each_weighted(std::string_view list, F f) {
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        std::size_t semi = item.find(';');
        std::string_view value = trim(item.substr(0, semi));
        int q = 1000;
        while (semi != std::string_view::npos) {
            item.remove_prefix(semi + 1);
            semi = item.find(';');
            std::string_view param = trim(item.substr(0, semi));
            if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
                // "0", "0.5", "1.000": at most three decimals.
                std::string_view v = param.substr(2);
                q = 0;
                int scale = 1000;
                bool dot = false;
                for (char c : v) {
                    if (c == '.' && !dot) {
                        dot = true;
                    } else if (c >= '0' && c <= '9') {
                        if (!dot)
                            q = q * 10 + (c - '0') * 1000;
                        else if (scale > 1)
                            q += (c - '0') * (scale /= 10);
                    } else {
                        q = 0;
                        break;
                    }
                }
                if (q > 1000) q = 1000;
            }
        }
        if (!value.empty()) f(value, q);
    }
}

// The weight the Accept field gives `type`/`sub`: from the most specific matching range, or -1.
int weight_of(std::string_view accept, std::string_view type, std::string_view sub) {
    int best_rank = -1, weight = -1;
    each_weighted(accept, [&](std::string_view range, int q) {
        std::size_t slash = range.find('/');
        if (slash == std::string_view::npos) return;
        std::string_view t = range.substr(0, slash), s = range.substr(slash + 1);
        int rank = -1;
        if (iequals(t, type) && iequals(s, sub))
            rank = 2;
        else if (iequals(t, type) && s == "*")
            rank = 1;
        else if (t == "*" && s == "*")
            rank = 0;
        if (rank > best_rank) best_rank = rank, weight = q;
    });
    return weight;
}

}  // namespace

bool prefers_html(std::string_view accept) {
    int html = weight_of(accept, "text", "html");
    int json = weight_of(accept, "application", "json");
    return html > 0 && html > json;
}

bool accepts_gzip(std::string_view accept_encoding) {
    int gzip = -1, any = -1;
    each_weighted(accept_encoding, [&](std::string_view coding, int q) {
        if (iequals(coding, "gzip") || iequals(coding, "x-gzip"))
            gzip = q;
        else if (coding == "*")
            any = q;
    });
    return gzip >= 0 ? gzip > 0 : any > 0;
}

}  // namespace duet
