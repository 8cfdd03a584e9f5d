// The simulated Gemini API: routing of a request to its route, key checks,
// and the handlers of every route (upload, get, list, delete, generate).

#include "impl.hpp"

#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cmath>

namespace resilience::sim::detail {

namespace {

constexpr std::string_view permission_message =
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
    "other form of API consumer identity to call this API.";
constexpr std::string_view bad_key_message = "API key not valid. Please pass a valid API key.";

bool is_version(std::string_view s) { return s == "v1beta" || s == "v1" || s == "v1alpha"; }

std::string permission_file(std::string_view id) {
    return "You do not have permission to access the File " + std::string(id) + " or it may not exist.";
}

json::object type_obj(std::string_view type) {
    json::object o;
    o["@type"] = type;
    return o;
}

std::string_view header(const request& req, std::string_view name) {
    auto it = req.find(name);
    return it == req.end() ? std::string_view{} : std::string_view(it->value());
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

// The key check of every API route but upload chunks (authorized by session).
std::optional<response> check_key(server_impl& s, const request& req, const target_info& t) {
    std::string_view key = header(req, "x-goog-api-key");
    if (key.empty()) key = t.key;
    unsigned v = req.version();
    bool ka = req.keep_alive();
    if (key.empty()) return error_response(403, permission_message, v, ka);
    if (!s.cfg.api_key.empty() && key != s.cfg.api_key) {
        json::object info = type_obj("type.googleapis.com/google.rpc.ErrorInfo");
        info["reason"] = "API_KEY_INVALID";
        info["domain"] = "googleapis.com";
        json::object meta;
        meta["service"] = "generativelanguage.googleapis.com";
        info["metadata"] = std::move(meta);
        json::object loc = type_obj("type.googleapis.com/google.rpc.LocalizedMessage");
        loc["locale"] = "en-US";
        loc["message"] = bad_key_message;
        json::array details;
        details.push_back(std::move(info));
        details.push_back(std::move(loc));
        return error_response(400, bad_key_message, v, ka, std::move(details));
    }
    return std::nullopt;
}

// Fields of the start body: camelCase or snake_case, inside "file" or at the top.
const json::value* field(const json::object& o, std::string_view camel, std::string_view snake) {
    if (auto* v = o.if_contains(camel)) return v;
    return o.if_contains(snake);
}

response upload_start(server_impl& s, const request& req, time_point now) {
    unsigned v = req.version();
    bool ka = req.keep_alive();
    auto bad = [&](std::string_view msg) { return error_response(400, msg, v, ka); };
    auto protocol = header(req, "x-goog-upload-protocol");
    auto command = header(req, "x-goog-upload-command");
    if (protocol != "resumable")
        return bad("Only the resumable upload protocol is supported (X-Goog-Upload-Protocol: resumable).");
    if (command != "start") return bad("The first request of a resumable upload must be X-Goog-Upload-Command: start.");

    start_request sr;
    std::string_view body = req.body();
    bool blank = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
    if (!blank) {
        boost::system::error_code ec;
        auto val = json::parse(body, ec);
        if (ec) {  // curl samples send single-quoted pseudo-JSON
            ec = {};
            val = json::parse(requote_single_quotes(body), ec);
        }
        if (ec || !val.is_object())
            return bad("Invalid JSON payload received. The upload metadata must be a JSON object.");
        const json::object* meta = &val.get_object();
        if (auto* f = meta->if_contains("file")) {
            if (!f->is_object()) return bad("Invalid JSON payload received. \"file\" must be an object.");
            meta = &f->get_object();
        }
        if (auto* dn = field(*meta, "displayName", "display_name")) {
            if (!dn->is_string()) return bad("Invalid value at 'file.display_name': expected a string.");
            sr.display_name = dn->get_string();
        }
        if (auto* mt = field(*meta, "mimeType", "mime_type")) {
            if (!mt->is_string()) return bad("Invalid value at 'file.mime_type': expected a string.");
            sr.mime_type = mt->get_string();
        }
        if (auto* sz = field(*meta, "sizeBytes", "size_bytes")) {
            if (sz->is_string()) {
                auto n = parse_u64(sz->get_string());
                if (!n) return bad("Invalid value at 'file.size_bytes': expected an int64.");
                sr.declared_size = *n;
            } else if (sz->is_uint64()) {
                sr.declared_size = sz->get_uint64();
            } else if (sz->is_int64() && sz->get_int64() >= 0) {
                sr.declared_size = static_cast<std::uint64_t>(sz->get_int64());
            } else {
                return bad("Invalid value at 'file.size_bytes': expected an int64.");
            }
        }
        if (auto* nm = meta->if_contains("name")) {
            if (!nm->is_string()) return bad("Invalid value at 'file.name': expected a string.");
            std::string_view n = nm->get_string();
            if (!n.empty()) {
                auto id = file_id_of(n);
                if (id.empty())
                    return bad("Invalid file name \"" + std::string(n.substr(0, 60)) +
                               "\": it must be files/ and up to 40 characters of a-z, 0-9 and -.");
                sr.wanted_id = id;
            }
        }
    }
    if (sr.display_name.size() > 512) return bad("The display name must be at most 512 characters.");
    if (auto h = header(req, "x-goog-upload-header-content-length"); !h.empty()) {
        auto n = parse_u64(h);
        if (!n) return bad("Invalid X-Goog-Upload-Header-Content-Length header.");
        if (sr.declared_size && *sr.declared_size != *n)
            return bad("The size in the upload metadata does not match X-Goog-Upload-Header-Content-Length.");
        sr.declared_size = *n;
    }
    if (auto h = header(req, "x-goog-upload-header-content-type"); !h.empty()) sr.mime_type = h;
    if (sr.mime_type.empty() || sr.mime_type == "application/octet-stream")
        return bad("Unsupported MIME type: application/octet-stream");
    // A media type is printable ASCII (RFC 9110 tokens and parameters); a
    // header's raw bytes that are not UTF-8 would make the File's JSON invalid.
    if (sr.mime_type.size() > 255 ||
        std::any_of(sr.mime_type.begin(), sr.mime_type.end(), [](unsigned char c) { return c < 0x20 || c > 0x7e; }))
        return bad("Invalid MIME type: it must be printable ASCII, at most 255 characters.");
    if (sr.declared_size && *sr.declared_size > s.cfg.upload_limit)
        return bad("The file size exceeds the limit of " + std::to_string(s.cfg.upload_limit) + " bytes.");

    auto started = s.files.start_upload(std::move(sr), now);
    if (auto* err = std::get_if<std::pair<int, std::string>>(&started))
        return error_response(err->first, err->second, v, ka);
    const auto& sid = std::get<std::string>(started);

    std::string host(header(req, "host"));
    if (host.empty()) host = "127.0.0.1:" + std::to_string(s.port.load());
    response res{http::status::ok, v};
    res.set(http::field::server, "resilience-gemini-sim");
    res.set("x-goog-upload-url", "http://" + host + "/upload/v1beta/files?upload_id=" + sid +
                                     "&upload_protocol=resumable");
    res.set("x-goog-upload-status", "active");
    res.set("x-goog-upload-chunk-granularity", std::to_string(upload_granularity));
    res.set("x-goog-upload-control-url", "http://" + host + "/upload/v1beta/files?upload_id=" + sid +
                                             "&upload_protocol=resumable");
    res.keep_alive(ka);
    res.prepare_payload();
    return res;
}

response upload_chunk(server_impl& s, const request& req, const target_info& t, time_point now) {
    unsigned v = req.version();
    bool ka = req.keep_alive();
    unsigned commands = 0;
    std::string_view cmd = header(req, "x-goog-upload-command");
    bool bad_command = cmd.empty();
    while (!cmd.empty()) {
        auto comma = cmd.find(',');
        auto tok = cmd.substr(0, comma);
        cmd = comma == std::string_view::npos ? std::string_view{} : cmd.substr(comma + 1);
        while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
        while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
        if (tok == "upload") commands |= static_cast<unsigned>(chunk_command::upload);
        else if (tok == "finalize") commands |= static_cast<unsigned>(chunk_command::finalize);
        else if (tok == "query") commands |= static_cast<unsigned>(chunk_command::query);
        else if (tok == "cancel") commands |= static_cast<unsigned>(chunk_command::cancel);
        else bad_command = true;
    }
    if (bad_command)
        return error_response(400, "Invalid X-Goog-Upload-Command (upload, finalize, query or cancel).", v, ka);
    std::optional<std::uint64_t> offset;
    if (auto h = header(req, "x-goog-upload-offset"); !h.empty()) offset = parse_u64(h);
    auto out = s.files.chunk(t.upload_id, commands, offset, req.body(), now);
    response res;
    if (out.status != 200) {
        res = out.plain_text ? text_response(out.status, out.message + "\n", v, ka)
                             : error_response(out.status, out.message, v, ka);
    } else if (out.file) {
        json::object root;
        root["file"] = std::move(*out.file);
        res = json_response(200, root, v, ka);
    } else {
        res = response{http::status::ok, v};
        res.set(http::field::server, "resilience-gemini-sim");
        res.keep_alive(ka);
        res.prepare_payload();
    }
    if (!out.upload_status.empty()) res.set("x-goog-upload-status", out.upload_status);
    res.set("x-goog-upload-size-received", std::to_string(out.received));
    return res;
}

response files_get(server_impl& s, const request& req, const target_info& t, time_point now) {
    response res{http::status::ok, req.version()};
    if (!s.files.get(t.file_id, now, res.body()))
        return error_response(403, permission_file(t.file_id), req.version(), req.keep_alive());
    res.set(http::field::content_type, "application/json; charset=UTF-8");
    res.set(http::field::server, "resilience-gemini-sim");
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

response files_list(server_impl& s, const request& req, const target_info& t, time_point now) {
    std::size_t page_size = 10;
    if (t.has_page_size) {
        auto n = parse_u64(t.page_size);
        if (!n) return error_response(400, "Invalid value for page_size: it must be a non-negative integer.",
                                      req.version(), req.keep_alive());
        if (*n > 0) page_size = static_cast<std::size_t>(std::min<std::uint64_t>(*n, 100));
    }
    json::array files;
    std::string next;
    if (!s.files.list(page_size, t.page_token, now, files, next))
        return error_response(400, "Invalid page token.", req.version(), req.keep_alive());
    s.counts.files_listed.fetch_add(files.size(), std::memory_order_relaxed);
    json::object root;
    if (!files.empty()) root["files"] = std::move(files);
    if (!next.empty()) root["nextPageToken"] = next;
    return json_response(200, root, req.version(), req.keep_alive());
}

response files_delete(server_impl& s, const request& req, const target_info& t, time_point now) {
    if (!s.files.remove(t.file_id, now))
        return error_response(403, permission_file(t.file_id), req.version(), req.keep_alive());
    return json_response(200, json::object(), req.version(), req.keep_alive());
}

std::size_t count_words(std::string_view s) {
    std::size_t n = 0;
    bool in = false;
    for (char c : s) {
        bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (!space && !in) ++n;
        in = !space;
    }
    return n;
}

response generate(server_impl& s, const request& req, const target_info& t, time_point now) {
    unsigned v = req.version();
    bool ka = req.keep_alive();
    auto bad = [&](std::string_view msg) { return error_response(400, msg, v, ka); };
    boost::system::error_code ec;
    auto val = json::parse(req.body(), ec);
    if (ec || !val.is_object()) return bad("Invalid JSON payload received.");
    const auto* contents = val.get_object().if_contains("contents");
    if (!contents) return bad("* GenerateContentRequest.contents: contents is not specified\n");
    json::array single;
    if (contents->is_object()) single.push_back(*contents);
    const json::array* list = contents->is_array() ? &contents->get_array() : contents->is_object() ? &single : nullptr;
    if (!list || list->empty()) return bad("* GenerateContentRequest.contents: contents is not specified\n");
    std::size_t words = 0, files = 0, parts_seen = 0;
    for (const auto& c : *list) {
        if (!c.is_object()) return bad("Invalid JSON payload received. Each content must be an object.");
        const auto* parts = c.get_object().if_contains("parts");
        if (!parts || !parts->is_array() || parts->get_array().empty())
            return bad("* GenerateContentRequest.contents.parts: contents.parts must not be empty.\n");
        for (const auto& p : parts->get_array()) {
            if (!p.is_object()) return bad("Invalid JSON payload received. Each part must be an object.");
            const auto& po = p.get_object();
            ++parts_seen;
            if (auto* text = po.if_contains("text"); text && text->is_string()) words += count_words(text->get_string());
            const json::value* fd = field(po, "fileData", "file_data");
            if (!fd) continue;
            if (!fd->is_object()) return bad("Invalid JSON payload received. fileData must be an object.");
            const json::value* uri = field(fd->get_object(), "fileUri", "file_uri");
            if (!uri || !uri->is_string() || uri->get_string().empty())
                return bad("* GenerateContentRequest.contents.parts.file_data.file_uri: file_uri is required.\n");
            std::string_view u = uri->get_string();
            auto pos = u.rfind("files/");
            std::string_view id = pos == std::string_view::npos ? std::string_view{} : file_id_of(u.substr(pos));
            if (id.empty()) return bad("Invalid or unsupported file uri: " + std::string(u.substr(0, 200)));
            switch (s.files.check_usable(id, now)) {
            case store::usable::missing: return error_response(403, permission_file(id), v, ka);
            case store::usable::not_active:
                return error_response(400,
                                      "The File " + std::string(id) +
                                          " is not in an ACTIVE state and usage is not allowed.",
                                      v, ka, {}, "FAILED_PRECONDITION");
            case store::usable::yes: ++files; break;
            }
        }
    }
    std::string answer = "This is a simulated answer from " + std::string(t.model) + " about " +
                         std::to_string(parts_seen) + " part(s) and " + std::to_string(files) + " file(s).";
    auto prompt_tokens = static_cast<std::int64_t>(words + 258 * files);
    auto answer_tokens = static_cast<std::int64_t>(count_words(answer));
    json::object part;
    part["text"] = answer;
    json::array parts;
    parts.push_back(std::move(part));
    json::object content;
    content["parts"] = std::move(parts);
    content["role"] = "model";
    json::object cand;
    cand["content"] = std::move(content);
    cand["finishReason"] = "STOP";
    cand["index"] = 0;
    json::array cands;
    cands.push_back(std::move(cand));
    json::object usage;
    usage["promptTokenCount"] = prompt_tokens;
    usage["candidatesTokenCount"] = answer_tokens;
    usage["totalTokenCount"] = prompt_tokens + answer_tokens;
    json::object root;
    root["candidates"] = std::move(cands);
    root["usageMetadata"] = std::move(usage);
    root["modelVersion"] = t.model;
    return json_response(200, root, v, ka);
}

}  // namespace

target_info classify(const request& req) {
    target_info t;
    auto parsed = boost::urls::parse_origin_form(std::string_view(req.target()));
    if (!parsed) return t;
    const auto& u = *parsed;
    std::string_view path = u.encoded_path();
    auto method = req.method();
    for (auto p : u.params()) {
        if (p.key == "key") t.key = p.value;
        else if (p.key == "upload_id") t.upload_id = p.value;
        else if (p.key == "pageToken" || p.key == "page_token") t.page_token = p.value;
        else if (p.key == "pageSize" || p.key == "page_size") {
            t.page_size = p.value;
            t.has_page_size = true;
        }
    }
    if (path.starts_with("/admin/") || path == "/admin") {
        t.r = route::admin;
        t.admin_path = path;
        return t;
    }
    // Split the path into at most four segments (views into the request target).
    std::array<std::string_view, 5> seg{};
    std::size_t n = 0;
    std::string_view rest = path;
    while (!rest.empty() && n < seg.size()) {
        if (rest.front() == '/') rest.remove_prefix(1);
        auto slash = rest.find('/');
        seg[n++] = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    }
    if (!rest.empty()) return t;  // too deep
    if (n == 3 && seg[0] == "upload" && is_version(seg[1]) && seg[2] == "files") {
        t.known_path = true;
        if (method == http::verb::post) t.r = t.upload_id.empty() ? route::upload_start : route::upload_chunk;
        return t;
    }
    if (n == 2 && is_version(seg[0]) && seg[1] == "files") {
        t.known_path = true;
        if (method == http::verb::get) t.r = route::list;
        return t;
    }
    if (n == 3 && is_version(seg[0]) && seg[1] == "files" && !seg[2].empty()) {
        t.known_path = true;
        t.file_id = seg[2];
        if (method == http::verb::get) t.r = route::get;
        else if (method == http::verb::delete_) t.r = route::remove;
        return t;
    }
    if (n == 3 && is_version(seg[0]) && seg[1] == "models") {
        auto colon = seg[2].find(':');
        if (colon != std::string_view::npos && seg[2].substr(colon + 1) == "generateContent" && colon > 0) {
            t.known_path = true;
            t.model = seg[2].substr(0, colon);
            if (method == http::verb::post) t.r = route::generate;
        }
        return t;
    }
    return t;
}

response handle_api(server_impl& s, const request& req, const target_info& t, time_point now) {
    unsigned v = req.version();
    bool ka = req.keep_alive();
    if (t.r == route::other) {
        if (t.known_path) return error_response(405, "Method not allowed for this resource.", v, ka);
        return error_response(404, "Method not found.", v, ka, {}, "NOT_FOUND");
    }
    if (t.r == route::upload_chunk) return upload_chunk(s, req, t, now);
    if (auto denied = check_key(s, req, t)) return std::move(*denied);
    switch (t.r) {
    case route::upload_start: return upload_start(s, req, now);
    case route::get:
    case route::remove:
        if (!valid_file_id(t.file_id))
            return error_response(400, "Invalid file name: files/" + std::string(t.file_id.substr(0, 60)), v, ka);
        return t.r == route::get ? files_get(s, req, t, now) : files_delete(s, req, t, now);
    case route::list: return files_list(s, req, t, now);
    case route::generate: return generate(s, req, t, now);
    default: return error_response(404, "Method not found.", v, ka, {}, "NOT_FOUND");
    }
}

response fault_response(server_impl& s, const decision& d, unsigned v, bool ka, time_point now) {
    auto quota_failure = [](std::string_view quota_id) {
        json::object viol;
        viol["quotaMetric"] = "generativelanguage.googleapis.com/generate_content_free_tier_requests";
        viol["quotaId"] = quota_id;
        json::object dims;
        dims["location"] = "global";
        dims["model"] = "gemini-2.0-flash";
        viol["quotaDimensions"] = std::move(dims);
        json::array violations;
        violations.push_back(std::move(viol));
        json::object qf = type_obj("type.googleapis.com/google.rpc.QuotaFailure");
        qf["violations"] = std::move(violations);
        return qf;
    };
    auto help = [] {
        json::object link;
        link["description"] = "Learn more about Gemini API quotas";
        link["url"] = "https://ai.google.dev/gemini-api/docs/rate-limits";
        json::array links;
        links.push_back(std::move(link));
        json::object h = type_obj("type.googleapis.com/google.rpc.Help");
        h["links"] = std::move(links);
        return h;
    };
    auto retry_info = [](duration delay) {
        json::object r = type_obj("type.googleapis.com/google.rpc.RetryInfo");
        r["retryDelay"] = format_proto_duration(delay);
        return r;
    };
    constexpr std::string_view quota_message =
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.";
    constexpr std::string_view overloaded = "The model is overloaded. Please try again later.";
    constexpr std::string_view internal =
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting";

    if (d.from == decision::source::outage)
        return error_response(503, "The service is currently unavailable.", v, ka);
    if (d.from == decision::source::quota) {
        json::array details;
        details.push_back(quota_failure(d.quota_id));
        details.push_back(help());
        details.push_back(retry_info(d.quota_remaining));
        return error_response(429, quota_message, v, ka, std::move(details));
    }
    const fault& f = d.answer;
    auto seconds_up = [](duration dd) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(dd).count();
        return ms <= 0 ? std::int64_t{0} : static_cast<std::int64_t>((ms + 999) / 1000);
    };
    switch (f.kind) {
    case fault_kind::rate_limit: {
        json::array details;
        details.push_back(quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"));
        details.push_back(help());
        details.push_back(retry_info(f.retry_delay));
        return error_response(f.status ? f.status : 429, quota_message, v, ka, std::move(details));
    }
    case fault_kind::rate_limit_bare:
        return error_response(f.status ? f.status : 429, "Resource has been exhausted (e.g. check quota).", v, ka);
    case fault_kind::quota_per_day: {
        json::array details;
        details.push_back(quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"));
        details.push_back(help());
        return error_response(f.status ? f.status : 429, quota_message, v, ka, std::move(details));
    }
    case fault_kind::retry_after_seconds: {
        int st = f.status ? f.status : 429;
        auto res = error_response(st, st == 429 ? quota_message : overloaded, v, ka);
        res.set(http::field::retry_after, std::to_string(seconds_up(f.retry_delay)));
        return res;
    }
    case fault_kind::retry_after_date: {
        int st = f.status ? f.status : 503;
        auto res = error_response(st, st == 429 ? quota_message : overloaded, v, ka);
        auto at = s.files.wall(now) + std::chrono::seconds(seconds_up(f.retry_delay) + 1);
        res.set(http::field::retry_after, format_http_date(at));
        return res;
    }
    case fault_kind::overloaded: return error_response(f.status ? f.status : 503, overloaded, v, ka);
    case fault_kind::internal: return error_response(f.status ? f.status : 500, internal, v, ka);
    case fault_kind::plain_text_error: {
        int st = f.status ? f.status : 500;
        auto reason = http::obsolete_reason(static_cast<http::status>(st));
        return text_response(st, std::to_string(st) + " " + std::string(reason) + "\n", v, ka);
    }
    default: return error_response(500, internal, v, ka);  // transport faults are applied by the server
    }
}

}  // namespace resilience::sim::detail
