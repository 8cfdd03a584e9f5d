#include <resilience/gemini/wire.hpp>
#include <resilience/http/client.hpp>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

namespace resilience::gemini {
namespace json = boost::json;

namespace {

failure malformed(std::string what) {
    return failure(make_error_code(http::errc::malformed_response), std::move(what));
}

std::string get_string(const json::object& o, std::string_view key) {
    if (auto* v = o.if_contains(key); v && v->is_string()) return std::string(v->as_string());
    return {};
}

// An int64 the wire carries as a string ("sizeBytes": "64657027"): the
// whole text a decimal, else 0.
std::int64_t int64_from_text(std::string_view s) noexcept {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    return ec == std::errc() && p == s.data() + s.size() ? n : 0;
}

std::int64_t int64_from_uint64(std::uint64_t u) noexcept {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(u, INT64_MAX));
}

// int64 that the wire may carry as a string ("sizeBytes": "64657027") or a number.
std::int64_t get_int64(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return int64_from_uint64(v->as_uint64());
    if (v->is_string()) return int64_from_text(v->as_string());
    return 0;
}

// The text member of a File that `key` names, or null.
std::string* text_field(file& f, std::string_view key) noexcept {
    switch (key.size()) {
    case 3: return key == "uri" ? &f.uri : nullptr;
    case 4: return key == "name" ? &f.name : nullptr;
    case 5: return key == "state" ? &f.state_text : nullptr;
    case 6: return key == "source" ? &f.source : nullptr;
    case 8: return key == "mimeType" ? &f.mime_type : nullptr;
    case 10: return key == "createTime" ? &f.create_time : key == "updateTime" ? &f.update_time
                  : key == "sha256Hash" ? &f.sha256_hash : nullptr;
    case 11: return key == "displayName" ? &f.display_name : nullptr;
    case 14: return key == "expirationTime" ? &f.expiration_time : nullptr;
    default: return nullptr;
    }
}

std::optional<json::value> parse_json(std::string_view text, json::storage_ptr sp = {}) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec, std::move(sp));
    if (ec) return std::nullopt;
    return v;
}

// A short, single-line excerpt of an untrusted body for an error message.
std::string excerpt(std::string_view s, std::size_t max = 200) {
    std::string out;
    for (char c : s) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        if (c == '\r' || c == '\n') {
            if (!out.empty()) break;
            continue;
        }
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

file file_from(const json::object& o) {
    file f;
    // One pass over the members (a parsed object holds each key once), not
    // one lookup per field.
    for (const auto& kv : o) {
        const std::string_view key = kv.key();
        if (key == "sizeBytes") {
            f.size_bytes = get_int64(o, key);
            continue;
        }
        if (!kv.value().is_string()) continue;
        if (std::string* t = text_field(f, key)) *t = std::string(kv.value().as_string());
    }
    f.state = f.state_text.empty() ? file_state::unspecified : parse_file_state(f.state_text);
    if (auto* e = o.if_contains("error"); e && e->is_object()) {
        rpc_status st;
        st.code = static_cast<int>(get_int64(e->as_object(), "code"));
        st.message = get_string(e->as_object(), "message");
        f.error = std::move(st);
    }
    return f;
}

// parse_file's reader: Boost.JSON's own parser (the same grammar, limits and
// errors as json::parse) calling back into this handler, which keeps the
// members of a File as they stream by instead of building a tree. What it
// keeps is what file_from reads from the tree: the members of the top object
// and of the object under "file" (the last value of a key wins, as in a
// parsed object; a text member whose value is not a string is empty),
// "sizeBytes" as file_from reads it, and "error" {code, message}.
class file_reader {
public:
    // Boost.JSON's own limits (those of json::parse's handler).
    static constexpr std::size_t max_object_size = json::object::max_size();
    static constexpr std::size_t max_array_size = json::array::max_size();
    static constexpr std::size_t max_key_size = json::string::max_size();
    static constexpr std::size_t max_string_size = json::string::max_size();

    // One object whose members are kept: the top one or the one under "file".
    struct members {
        file f;
        bool has_error = false;  // the last "error" is an object
        std::int64_t error_code = 0;
        std::string error_message;
    };
    members top, inner;
    bool top_is_object = false;
    bool inner_is_object = false;  // the last "file" of the top object is an object

    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_array_begin(error_code&) { return open(false); }
    bool on_array_end(std::size_t, error_code&) { return close(); }
    bool on_object_begin(error_code&) { return open(true); }
    bool on_object_end(std::size_t, error_code&) { return close(); }
    bool on_string_part(std::string_view s, std::size_t n, error_code&) {
        if (std::string* t = text_target(n == s.size())) t->append(s);
        else if (slot_ == slot::size_bytes || slot_ == slot::error_code) key_.append(s);
        return true;
    }
    bool on_string(std::string_view s, std::size_t n, error_code&) {
        const bool first = n == s.size();
        if (std::string* t = text_target(first)) {
            t->append(s);
        } else if (slot_ == slot::size_bytes || slot_ == slot::error_code) {
            // The whole string: pieces, if any, were kept in key_.
            if (first) size_of_member() = int64_from_text(s);
            else size_of_member() = int64_from_text(key_.append(s));
        }
        value_done();
        return true;
    }
    bool on_key_part(std::string_view s, std::size_t n, error_code&) {
        if (n == s.size()) key_.clear();
        key_.append(s);
        return true;
    }
    bool on_key(std::string_view s, std::size_t n, error_code&) {
        std::string_view key = s;
        if (n != s.size()) key = key_.append(s);
        pick(key);
        return true;
    }
    bool on_number_part(std::string_view, error_code&) { return true; }
    bool on_int64(std::int64_t i, std::string_view, error_code&) { return number(i); }
    bool on_uint64(std::uint64_t u, std::string_view, error_code&) { return number(int64_from_uint64(u)); }
    bool on_double(double, std::string_view, error_code&) { return number(0); }
    bool on_bool(bool, error_code&) { return number(0); }
    bool on_null(error_code&) { return number(0); }
    bool on_comment_part(std::string_view, error_code&) { return true; }
    bool on_comment(std::string_view, error_code&) { return true; }

private:
    // What the next value at the current depth is.
    enum class slot : unsigned char { none, text, size_bytes, file, error, error_code, error_message };
    // What the object at a depth is.
    enum class role : unsigned char { ignored, top, inner, top_error, inner_error };

    members& of(role r) noexcept { return r == role::inner || r == role::inner_error ? inner : top; }
    role current() const noexcept { return depth_ > 0 && depth_ <= 3 ? roles_[depth_ - 1] : role::ignored; }

    void pick(std::string_view key) {
        slot_ = slot::none;
        text_ = nullptr;
        switch (current()) {
        case role::top:
        case role::inner: {
            members& m = of(current());
            if (key == "sizeBytes") slot_ = slot::size_bytes;
            else if (key == "error") slot_ = slot::error;
            else if (key == "file" && current() == role::top) slot_ = slot::file;
            else if ((text_ = text_field(m.f, key))) slot_ = slot::text;
            break;
        }
        case role::top_error:
        case role::inner_error:
            if (key == "code") slot_ = slot::error_code;
            else if (key == "message") slot_ = slot::error_message;
            break;
        case role::ignored: break;
        }
    }
    std::int64_t& size_of_member() noexcept {
        members& m = of(current());
        return current() == role::top_error || current() == role::inner_error ? m.error_code : m.f.size_bytes;
    }
    // The string a text value goes to (cleared at its first piece), or null.
    std::string* text_target(bool first) {
        std::string* t = nullptr;
        if (slot_ == slot::text) t = text_;
        else if (slot_ == slot::error_message) t = &of(current()).error_message;
        else if (slot_ == slot::size_bytes || slot_ == slot::error_code) {
            if (first) key_.clear();
            return nullptr;
        }
        if (t && first) t->clear();
        return t;
    }
    // A scalar that is not a string.
    bool number(std::int64_t v) {
        if (slot_ == slot::size_bytes || slot_ == slot::error_code) size_of_member() = v;
        else not_text();
        value_done();
        return true;
    }
    // The pending member's value is not what it is read from: empty, or 0.
    void not_text() {
        if (slot_ == slot::size_bytes || slot_ == slot::error_code) size_of_member() = 0;
        else if (slot_ == slot::text) text_->clear();
        else if (slot_ == slot::error_message) of(current()).error_message.clear();
        else if (slot_ == slot::file) inner_is_object = false;
        else if (slot_ == slot::error) of(current()).has_error = false;
    }
    void value_done() {
        slot_ = slot::none;
        text_ = nullptr;
    }
    bool open(bool object) {
        role r = role::ignored;
        if (depth_ == 0) {
            top_is_object = object;
            if (object) r = role::top;
        } else if (!object) {
            not_text();
        } else if (slot_ == slot::file) {
            inner = members();
            inner_is_object = true;
            r = role::inner;
        } else if (slot_ == slot::error) {
            members& m = of(current());
            m.has_error = true;
            m.error_code = 0;
            m.error_message.clear();
            r = current() == role::top ? role::top_error : role::inner_error;
        } else {
            not_text();
        }
        if (depth_ < 3) roles_[depth_] = r;
        ++depth_;
        value_done();
        return true;
    }
    bool close() {
        --depth_;
        value_done();
        return true;
    }

    std::size_t depth_ = 0;
    role roles_[3] = {role::ignored, role::ignored, role::ignored};
    slot slot_ = slot::none;
    std::string* text_ = nullptr;
    std::string key_;  // a key (or a number's text) that came in pieces
};

}  // namespace

std::string_view to_string(file_state s) noexcept {
    switch (s) {
    case file_state::unspecified: return "STATE_UNSPECIFIED";
    case file_state::processing: return "PROCESSING";
    case file_state::active: return "ACTIVE";
    case file_state::failed: return "FAILED";
    case file_state::unknown: return "UNKNOWN";
    }
    return "UNKNOWN";
}

file_state parse_file_state(std::string_view s) noexcept {
    if (s == "PROCESSING") return file_state::processing;
    if (s == "ACTIVE") return file_state::active;
    if (s == "FAILED") return file_state::failed;
    if (s == "STATE_UNSPECIFIED") return file_state::unspecified;
    return file_state::unknown;
}

boost::json::object to_json(const file& f) {
    boost::json::object o;
    auto put = [&](const char* key, const std::string& v) {
        if (!v.empty()) o[key] = v;
    };
    o["name"] = f.name;
    put("displayName", f.display_name);
    put("mimeType", f.mime_type);
    o["sizeBytes"] = f.size_bytes;
    o["state"] = f.state == file_state::unspecified && !f.state_text.empty() ? f.state_text
                                                                               : std::string(to_string(f.state));
    put("uri", f.uri);
    put("sha256Hash", f.sha256_hash);
    put("createTime", f.create_time);
    put("updateTime", f.update_time);
    put("expirationTime", f.expiration_time);
    if (f.error) o["error"] = boost::json::object{{"code", f.error->code}, {"message", f.error->message}};
    return o;
}

result<file> parse_file(std::string_view text) {
    if (text.empty()) return malformed("file resource is empty (a success answer without a body)");
    // Read straight into the File (file_reader): no tree, no copies.
    json::basic_parser<file_reader> p{json::parse_options()};
    boost::system::error_code ec;
    const std::size_t n = p.write_some(false, text.data(), text.size(), ec);
    if (ec || n < text.size()) return malformed("file resource is not valid JSON: " + excerpt(text, 80));
    file_reader& r = p.handler();
    if (!r.top_is_object) return malformed("file resource is not a JSON object");
    file_reader::members& m = r.inner_is_object ? r.inner : r.top;
    if (m.f.name.empty()) return malformed("file resource has no name");
    file& f = m.f;
    f.state = f.state_text.empty() ? file_state::unspecified : parse_file_state(f.state_text);
    if (m.has_error) {
        rpc_status st;
        st.code = static_cast<int>(m.error_code);
        st.message = std::move(m.error_message);
        f.error = std::move(st);
    }
    return std::move(f);
}

result<file_page> parse_file_page(std::string_view text) {
    auto v = parse_json(text);
    if (!v || !v->is_object()) return malformed("files.list answer is not a JSON object: " + excerpt(text, 80));
    file_page page;
    const auto& o = v->as_object();
    if (auto* files = o.if_contains("files")) {
        if (!files->is_array()) return malformed("files.list answer: \"files\" is not an array");
        for (const auto& f : files->as_array())
            if (f.is_object()) page.files.push_back(file_from(f.as_object()));
    }
    page.next_page_token = get_string(o, "nextPageToken");
    return page;
}

result<generate_result> parse_generate_result(std::string_view text) {
    auto v = parse_json(text);
    if (!v || !v->is_object()) return malformed("generateContent answer is not a JSON object: " + excerpt(text, 80));
    const auto& o = v->as_object();
    generate_result r;
    if (auto* c = o.if_contains("candidates"); c && c->is_array() && !c->as_array().empty()) {
        if (auto* cand = c->as_array()[0].if_object()) {
            r.finish_reason = get_string(*cand, "finishReason");
            if (auto* content = cand->if_contains("content"); content && content->is_object())
                if (auto* parts = content->as_object().if_contains("parts"); parts && parts->is_array())
                    for (const auto& p : parts->as_array())
                        if (auto* po = p.if_object()) r.text += get_string(*po, "text");
        }
    } else if (!o.contains("promptFeedback")) {
        return malformed("generateContent answer has no candidates");
    }
    if (auto* u = o.if_contains("usageMetadata"); u && u->is_object()) {
        r.usage.prompt_tokens = get_int64(u->as_object(), "promptTokenCount");
        r.usage.candidates_tokens = get_int64(u->as_object(), "candidatesTokenCount");
        r.usage.total_tokens = get_int64(u->as_object(), "totalTokenCount");
    }
    r.model_version = get_string(o, "modelVersion");
    return r;
}

std::string make_generate_request(const std::vector<content>& contents) {
    json::array arr;
    for (const auto& c : contents) {
        json::array parts;
        for (const auto& p : c.parts) {
            if (!p.file_uri.empty())
                parts.push_back(json::object{{"fileData", json::object{{"mimeType", p.mime_type}, {"fileUri", p.file_uri}}}});
            else
                parts.push_back(json::object{{"text", p.text}});
        }
        arr.push_back(json::object{{"role", c.role}, {"parts", std::move(parts)}});
    }
    return json::serialize(json::object{{"contents", std::move(arr)}});
}

std::string make_upload_start_body(std::string_view display_name) {
    json::object file;
    if (!display_name.empty()) file["displayName"] = display_name;
    return json::serialize(json::object{{"file", std::move(file)}});
}

namespace {

std::string_view string_at(const json::object& o, std::string_view key) {
    if (auto* v = o.if_contains(key); v && v->is_string()) return v->get_string();
    return {};
}

// The quotas that no retry window clears, by the words Google puts in their
// ids; empty for the others.
std::string_view lasting_quota(std::string_view quota_id) noexcept {
    if (quota_id.find("PerDay") != std::string_view::npos) return "per-day quota";
    if (quota_id.find("FileStorage") != std::string_view::npos) return "file storage quota";
    return {};
}

}  // namespace

bool read_google_error(std::string_view body, diagnostics& d) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return false;
    if (v.is_array() && v.get_array().size() == 1) v = v.get_array()[0];
    if (!v.is_object()) return false;
    auto* e = v.get_object().if_contains("error");
    if (!e || !e->is_object()) return false;
    const auto& err = e->get_object();
    d.status = bounded_text(string_at(err, "status"));
    d.message = bounded_text(string_at(err, "message"));
    if (auto* details = err.if_contains("details"); details && details->is_array()) {
        for (const auto& item : details->get_array()) {
            if (!item.is_object()) continue;
            const auto& it = item.get_object();
            std::string_view type = string_at(it, "@type");
            if (type.ends_with("google.rpc.ErrorInfo") && d.reason.empty()) {
                d.reason = bounded_text(string_at(it, "reason"));
            } else if (type.ends_with("google.rpc.QuotaFailure") && d.quota_id.empty()) {
                // The first quota named, unless a later one is one that no
                // retry window clears (per day, file storage): that one wins.
                if (auto* vs = it.if_contains("violations"); vs && vs->is_array()) {
                    for (const auto& viol : vs->get_array()) {
                        if (!viol.is_object()) continue;
                        auto q = string_at(viol.get_object(), "quotaId");
                        if (q.empty()) continue;
                        const bool lasting = !lasting_quota(q).empty();
                        if (d.quota_id.empty() || lasting) d.quota_id = bounded_text(q);
                        if (lasting) break;
                    }
                }
            }
        }
    }
    return true;
}

failure decode_error(int http_status, std::string_view body, std::string_view retry_after,
                     std::chrono::system_clock::time_point now) {
    http::response r;
    r.status = http_status;
    r.body = std::string(body);
    if (!retry_after.empty()) r.headers.set(boost::beast::http::field::retry_after, retry_after);
    failure f = http::to_failure(r, now);
    if (!f.code) {  // a 2xx is not an error answer
        f.code = make_error_code(http::errc::unexpected_status);
        return f;
    }
    // Google's envelope replaces the plain-text reading of the body.
    if (diagnostics g; read_google_error(body, g)) {
        const std::string prefix = "HTTP " + std::to_string(http_status);
        f.diag.status = std::move(g.status);
        f.diag.reason = std::move(g.reason);
        f.diag.quota_id = std::move(g.quota_id);
        f.diag.message = g.message.empty() ? prefix : prefix + ": " + g.message;
    }
    if (!f.diag.retry_after) f.diag.retry_after = parse_retry_info(body);
    // A quota that does not clear within any sane retry window is not retried,
    // and the error says which one it was.
    if (auto kind = lasting_quota(f.diag.quota_id); !kind.empty()) {
        f.code = make_error_code(errc::quota_exhausted);
        f.diag.message = std::string(kind) + " exhausted (" + f.diag.quota_id + "): " + f.diag.message;
        f.diag.retry_after.reset();
    }
    return f;
}

result<std::uint64_t> parse_upload_size_received(std::string_view h, std::uint64_t size) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(h.data(), h.data() + h.size(), n);
    if (h.empty() || ec != std::errc() || p != h.data() + h.size() || n > size)
        return malformed("upload query answer has no valid x-goog-upload-size-received");
    return n;
}

std::string_view mime_type_for(std::string_view path) noexcept {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 28> table{{
        {"mp4", "video/mp4"}, {"mpeg", "video/mpeg"}, {"mpg", "video/mpeg"}, {"mov", "video/mov"},
        {"avi", "video/avi"}, {"flv", "video/x-flv"}, {"webm", "video/webm"}, {"wmv", "video/wmv"},
        {"3gp", "video/3gpp"}, {"mp3", "audio/mp3"}, {"wav", "audio/wav"}, {"aiff", "audio/aiff"},
        {"aac", "audio/aac"}, {"ogg", "audio/ogg"}, {"flac", "audio/flac"}, {"png", "image/png"},
        {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"}, {"webp", "image/webp"}, {"heic", "image/heic"},
        {"heif", "image/heif"}, {"gif", "image/gif"}, {"pdf", "application/pdf"}, {"txt", "text/plain"},
        {"md", "text/md"}, {"csv", "text/csv"}, {"html", "text/html"}, {"json", "application/json"},
    }};
    auto slash = path.find_last_of('/');
    std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
    auto dot = base.find_last_of('.');
    if (dot == std::string_view::npos) return "application/octet-stream";
    std::string_view ext = base.substr(dot + 1);
    for (const auto& [e, m] : table) {
        if (e.size() != ext.size()) continue;
        bool eq = true;
        for (std::size_t i = 0; i < e.size(); ++i)
            if (e[i] != (ext[i] >= 'A' && ext[i] <= 'Z' ? static_cast<char>(ext[i] - 'A' + 'a') : ext[i])) eq = false;
        if (eq) return m;
    }
    return "application/octet-stream";
}

void redact_secret(std::string& text, std::string_view secret) {
    if (secret.empty()) return;
    constexpr std::string_view mark = "[redacted]";
    for (std::size_t pos = 0; (pos = text.find(secret, pos)) != std::string::npos; pos += mark.size())
        text.replace(pos, secret.size(), mark);
}

namespace {

// The code point starting at s[i] and its length; length 0 when the bytes
// there are not well-formed UTF-8.
std::pair<char32_t, std::size_t> decode_utf8(std::string_view s, std::size_t i) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return {c, 1};
    std::size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? (c < 0xf0 ? 3 : 0) : c >= 0xc2 ? 2 : 0;
    if (len == 0 || i + len > s.size()) return {0, 0};
    char32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    for (std::size_t k = 1; k < len; ++k) {
        if ((b(i + k) & 0xc0) != 0x80) return {0, 0};
        cp = (cp << 6) | (b(i + k) & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return {0, 0};
    return {cp, len};
}

bool is_bidi_control(char32_t cp) noexcept {
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f ||
           cp == 0x061c;
}

std::string hex_escape(const char* prefix, unsigned v, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, v);
    return buf;
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        auto [cp, len] = decode_utf8(s, i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

std::string terminal_safe(std::string_view s, bool multiline) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        auto [cp, len] = decode_utf8(s, i);
        if (len == 0) {
            out += hex_escape("\\x", static_cast<unsigned char>(s[i]), 2);
            ++i;
            continue;
        }
        if (multiline && (cp == '\n' || cp == '\t')) out += static_cast<char>(cp);
        else if (cp < 0x20 || cp == 0x7f) out += hex_escape("\\x", static_cast<unsigned>(cp), 2);
        else if ((cp >= 0x80 && cp <= 0x9f) || is_bidi_control(cp)) out += hex_escape("\\u", static_cast<unsigned>(cp), 4);
        else out.append(s.substr(i, len));
        i += len;
    }
    return out;
}

std::string json_terminal_safe(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        auto [cp, len] = decode_utf8(s, i);
        if (len == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || is_bidi_control(cp))
            out += hex_escape("\\u", static_cast<unsigned>(cp), 4);  // outside strings JSON has none of these
        else out.append(s.substr(i, len));
        i += len;
    }
    return out;
}

bool is_valid_model_name(std::string_view m) noexcept {
    if (m.starts_with("models/")) m.remove_prefix(7);
    if (m.empty() || m.size() > 128) return false;
    return std::all_of(m.begin(), m.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_';
    });
}

std::string normalize_file_name(std::string_view s) {
    auto valid_id = [](std::string_view id) {
        if (id.empty() || id.size() > 40 || id.front() == '-' || id.back() == '-') return false;
        return std::all_of(id.begin(), id.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        });
    };
    if (s.find("://") != std::string_view::npos) {
        auto u = boost::urls::parse_uri(s);
        if (!u) return {};
        std::string_view path = u->encoded_path();
        auto pos = path.rfind("/files/");
        if (pos == std::string_view::npos) return {};
        s = path.substr(pos + 1);
    }
    if (s.starts_with("files/")) s.remove_prefix(6);
    if (!valid_id(s)) return {};
    return "files/" + std::string(s);
}

}  // namespace resilience::gemini
