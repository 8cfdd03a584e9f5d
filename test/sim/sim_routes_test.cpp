// Every route of the simulator over raw HTTP on loopback (server on its own thread).

#include "http_client.hpp"

#include <resilience/sim/server.hpp>

#include <boost/test/unit_test.hpp>

#include <openssl/sha.h>

#include <atomic>
#include <random>
#include <regex>
#include <thread>

using namespace simtest;
namespace sim = resilience::sim;

namespace {

const std::string key = "test-key";

sim::config base_config() {
    sim::config cfg;
    cfg.api_key = key;
    return cfg;
}

headers with_key(headers hs = {}) {
    hs.emplace_back("x-goog-api-key", key);
    return hs;
}

headers start_headers(std::size_t size, const std::string& mime) {
    return with_key({{"X-Goog-Upload-Protocol", "resumable"},
                     {"X-Goog-Upload-Command", "start"},
                     {"X-Goog-Upload-Header-Content-Length", std::to_string(size)},
                     {"X-Goog-Upload-Header-Content-Type", mime},
                     {"Content-Type", "application/json"}});
}

std::string hex_sha256(const std::string& s) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : md) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

std::string session_target(sync_client& c, const std::string& body, std::size_t size,
                           const std::string& mime = "video/mp4") {
    auto res = c.send(http::verb::post, "/upload/v1beta/files", body, start_headers(size, mime));
    BOOST_REQUIRE_EQUAL(res.result_int(), 200);
    auto it = res.find("x-goog-upload-url");
    BOOST_REQUIRE(it != res.end());
    BOOST_CHECK_EQUAL(res["x-goog-upload-status"], "active");
    return target_of(std::string(it->value()));
}

// Uploads `data` in one "upload, finalize"; returns the File.
json::object upload(sync_client& c, const std::string& data, const std::string& mime = "text/plain") {
    auto t = session_target(c, R"({"file": {"displayName": "doc"}})", data.size(), mime);
    auto res = c.send(http::verb::post, t, data, {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "0"}});
    BOOST_REQUIRE_EQUAL(res.result_int(), 200);
    return body_json(res).at("file").as_object();
}

std::string error_status(const response& res) {
    return std::string(body_json(res).at("error").at("status").as_string());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sim_routes)

BOOST_AUTO_TEST_CASE(chunked_upload_js_camel_case_body) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    const std::size_t chunk = 8u << 20;
    std::string data(2 * chunk + 1234, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
    auto t = session_target(
        c, R"({"file":{"displayName":"Big Buck Bunny","mimeType":"video/mp4","sizeBytes":")" + std::to_string(data.size()) + "\"}}",
        data.size());
    auto r1 = c.send(http::verb::post, t, data.substr(0, chunk), {{"X-Goog-Upload-Command", "upload"}, {"X-Goog-Upload-Offset", "0"}});
    BOOST_CHECK_EQUAL(r1.result_int(), 200);
    BOOST_CHECK_EQUAL(r1["x-goog-upload-status"], "active");
    // query reports what was received
    auto q = c.send(http::verb::post, t, "", {{"X-Goog-Upload-Command", "query"}});
    BOOST_CHECK_EQUAL(q.result_int(), 200);
    BOOST_CHECK_EQUAL(q["x-goog-upload-status"], "active");
    BOOST_CHECK_EQUAL(q["x-goog-upload-size-received"], std::to_string(chunk));
    auto r2 = c.send(http::verb::post, t, data.substr(chunk, chunk), {{"X-Goog-Upload-Command", "upload"}, {"X-Goog-Upload-Offset", std::to_string(chunk)}});
    BOOST_CHECK_EQUAL(r2["x-goog-upload-status"], "active");
    auto r3 = c.send(http::verb::post, t, data.substr(2 * chunk),
                     {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", std::to_string(2 * chunk)}});
    BOOST_REQUIRE_EQUAL(r3.result_int(), 200);
    BOOST_CHECK_EQUAL(r3["x-goog-upload-status"], "final");
    auto f = body_json(r3).at("file").as_object();
    std::string name(f.at("name").as_string());
    BOOST_CHECK(std::regex_match(name, std::regex("files/[a-z0-9]{12}")));
    BOOST_CHECK_EQUAL(f.at("displayName").as_string(), "Big Buck Bunny");
    BOOST_CHECK_EQUAL(f.at("mimeType").as_string(), "video/mp4");
    BOOST_CHECK_EQUAL(f.at("sizeBytes").as_string(), std::to_string(data.size()));  // int64 as a string
    auto hex = hex_sha256(data);
    BOOST_CHECK_EQUAL(srv.file(name)->sha256_hex, hex);
    BOOST_CHECK_EQUAL(f.at("state").as_string(), "ACTIVE");  // default processing is instant
    BOOST_CHECK_EQUAL(f.at("source").as_string(), "UPLOADED");
    BOOST_CHECK_EQUAL(f.at("uri").as_string(),
                      "https://generativelanguage.googleapis.com/v1beta/" + name);
    BOOST_CHECK(*srv.file_bytes(name) == data);
    // query after final reports final and the file
    auto q2 = c.send(http::verb::post, t, "", {{"X-Goog-Upload-Command", "query"}});
    BOOST_CHECK_EQUAL(q2["x-goog-upload-status"], "final");
    BOOST_CHECK_EQUAL(body_json(q2).at("file").at("name").as_string(), name);
}

BOOST_AUTO_TEST_CASE(sha256_hash_is_base64_of_lower_case_hex) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    auto f = upload(c, "hello");
    // sha256("hello") = 2cf24dba...; base64 of that hex text:
    BOOST_CHECK_EQUAL(f.at("sha256Hash").as_string(),
                      "MmNmMjRkYmE1ZmIwYTMwZTI2ZTgzYjJhYzViOWUyOWUxYjE2MWU1YzFmYTc0MjVlNzMwNDMzNjI5MzhiOTgyNA==");
}

BOOST_AUTO_TEST_CASE(python_genai_snake_case_body_and_keyless_chunks) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    std::string data = "python bytes";
    // python-genai: snake_case, integer size_bytes; chunk requests carry no API key.
    std::string body = R"({"file": {"display_name": "py", "mime_type": "text/plain", "size_bytes": 12}})";
    auto t = session_target(c, body, data.size(), "text/plain");
    auto res = c.send(http::verb::post, t, data, {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "0"}});
    BOOST_REQUIRE_EQUAL(res.result_int(), 200);
    auto f = body_json(res).at("file").as_object();
    BOOST_CHECK_EQUAL(f.at("displayName").as_string(), "py");
    BOOST_CHECK_EQUAL(f.at("sizeBytes").as_string(), "12");
    BOOST_CHECK(*srv.file_bytes(std::string(f.at("name").as_string())) == data);
}

BOOST_AUTO_TEST_CASE(curl_single_quoted_body_and_wanted_name) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    auto t = session_target(c, "{'file': {'display_name': 'It\\'s \"curl\"', 'name': 'files/my-file-1'}}", 3, "text/plain");
    auto res = c.send(http::verb::post, t, "abc", {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "0"}});
    BOOST_REQUIRE_EQUAL(res.result_int(), 200);
    auto f = body_json(res).at("file").as_object();
    BOOST_CHECK_EQUAL(f.at("name").as_string(), "files/my-file-1");
    BOOST_CHECK_EQUAL(f.at("displayName").as_string(), "It's \"curl\"");
    // the same name again: 409
    auto again = c.send(http::verb::post, "/upload/v1beta/files", "{'file': {'name': 'files/my-file-1'}}", start_headers(3, "text/plain"));
    BOOST_CHECK_EQUAL(again.result_int(), 409);
}

BOOST_AUTO_TEST_CASE(upload_rules) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    // A non-final chunk that is not a multiple of 8 MiB: plain-text 400.
    auto t = session_target(c, "", 821333 + 10, "video/mp4");
    auto bad = c.send(http::verb::post, t, std::string(821333, 'x'), {{"X-Goog-Upload-Command", "upload"}, {"X-Goog-Upload-Offset", "0"}});
    BOOST_CHECK_EQUAL(bad.result_int(), 400);
    BOOST_CHECK(bad[http::field::content_type].starts_with("text/plain"));
    BOOST_CHECK(bad.body().find("8388608") != std::string::npos);
    // A wrong offset
    auto off = c.send(http::verb::post, t, "abc", {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "5"}});
    BOOST_CHECK_EQUAL(off.result_int(), 400);
    // Size mismatch with the declared size on finalize
    auto mism = c.send(http::verb::post, t, "abc", {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "0"}});
    BOOST_CHECK_EQUAL(mism.result_int(), 400);
    // Unknown session
    auto none = c.send(http::verb::post, "/upload/v1beta/files?upload_id=nope&upload_protocol=resumable", "x",
                       {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "0"}});
    BOOST_CHECK_EQUAL(none.result_int(), 404);
    // Bad command
    auto cmd = c.send(http::verb::post, t, "x", {{"X-Goog-Upload-Command", "explode"}});
    BOOST_CHECK_EQUAL(cmd.result_int(), 400);
    // Start without the resumable protocol, with octet-stream, with bad JSON
    auto h = start_headers(3, "text/plain");
    h.erase(h.begin());
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/upload/v1beta/files", "", h).result_int(), 400);
    auto oct = c.send(http::verb::post, "/upload/v1beta/files", "", start_headers(3, "application/octet-stream"));
    BOOST_CHECK_EQUAL(oct.result_int(), 400);
    BOOST_CHECK_EQUAL(body_json(oct).at("error").at("message").as_string(), "Unsupported MIME type: application/octet-stream");
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/upload/v1beta/files", "{\"file\": ", start_headers(3, "text/plain")).result_int(), 400);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/upload/v1beta/files", R"({"file": {"size_bytes": -3}})", start_headers(3, "text/plain")).result_int(), 400);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/upload/v1beta/files", R"({"file": {"sizeBytes": "4"}})", start_headers(3, "text/plain")).result_int(), 400);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/upload/v1beta/files", R"({"file": {"name": "files/UPPER"}})", start_headers(3, "text/plain")).result_int(), 400);
    // Finalized sessions refuse more bytes
    auto t2 = session_target(c, "", 1, "text/plain");
    BOOST_CHECK_EQUAL(c.send(http::verb::post, t2, "a", {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "0"}}).result_int(), 200);
    auto again = c.send(http::verb::post, t2, "a", {{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "1"}});
    BOOST_CHECK_EQUAL(again.result_int(), 400);
    BOOST_CHECK_EQUAL(again["x-goog-upload-status"], "final");
}

BOOST_AUTO_TEST_CASE(file_resource_format) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    auto f = upload(c, "hello");
    std::string id = std::string(f.at("name").as_string()).substr(6);
    auto res = c.send(http::verb::get, "/v1beta/files/" + id, "", with_key());
    BOOST_REQUIRE_EQUAL(res.result_int(), 200);
    const std::string& b = res.body();
    // Pretty-printed with two spaces, fields in the service's order, trailing newline.
    BOOST_CHECK(b.starts_with("{\n  \"name\": \"files/" + id + "\",\n  \"displayName\": \"doc\",\n  \"mimeType\": \"text/plain\",\n  \"sizeBytes\": \"5\",\n  \"createTime\": \""));
    BOOST_CHECK(b.ends_with("\"state\": \"ACTIVE\",\n  \"source\": \"UPLOADED\"\n}\n"));
    auto v = body_json(res).as_object();
    std::string created(v.at("createTime").as_string()), expires(v.at("expirationTime").as_string());
    BOOST_CHECK(std::regex_match(created, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
    BOOST_CHECK(std::regex_match(expires, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)")));
    // expiration = create + 48 h: same time of day, two days later.
    BOOST_CHECK_EQUAL(created.substr(11, 15), expires.substr(11, 15));
}

BOOST_AUTO_TEST_CASE(get_list_paging_delete) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    std::vector<std::string> names;
    for (int i = 0; i < 25; ++i) names.push_back(srv.add_file("f" + std::to_string(i)));
    // default page size 10
    std::vector<std::string> seen;
    std::string token;
    int pages = 0;
    do {
        auto res = c.send(http::verb::get, "/v1beta/files" + (token.empty() ? "" : "?pageToken=" + token), "", with_key());
        BOOST_REQUIRE_EQUAL(res.result_int(), 200);
        auto v = body_json(res).as_object();
        for (auto& f : v.at("files").as_array()) seen.emplace_back(f.at("name").as_string());
        token = v.contains("nextPageToken") ? std::string(v.at("nextPageToken").as_string()) : "";
        ++pages;
        BOOST_CHECK_LE(v.at("files").as_array().size(), 10u);
    } while (!token.empty() && pages < 10);
    BOOST_CHECK_EQUAL(pages, 3);
    BOOST_CHECK(seen == names);
    // pageSize above 100 is clamped; pageSize 7 gives 7
    auto big = body_json(c.send(http::verb::get, "/v1beta/files?pageSize=500", "", with_key())).as_object();
    BOOST_CHECK_EQUAL(big.at("files").as_array().size(), 25u);
    BOOST_CHECK(!big.contains("nextPageToken"));
    auto seven = body_json(c.send(http::verb::get, "/v1beta/files?pageSize=7", "", with_key())).as_object();
    BOOST_CHECK_EQUAL(seven.at("files").as_array().size(), 7u);
    BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files?pageSize=abc", "", with_key()).result_int(), 400);
    BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files?pageToken=!!garbage", "", with_key()).result_int(), 400);
    BOOST_CHECK_EQUAL(srv.snapshot().files_listed, 25u + 25u + 7u);  // the pages answered, not the refused requests
    // delete: {} then 403 for get and delete
    std::string id = names[3].substr(6);
    auto del = c.send(http::verb::delete_, "/v1beta/files/" + id, "", with_key());
    BOOST_CHECK_EQUAL(del.result_int(), 200);
    BOOST_CHECK_EQUAL(del.body(), "{}\n");
    auto gone = c.send(http::verb::get, "/v1beta/files/" + id, "", with_key());
    BOOST_CHECK_EQUAL(gone.result_int(), 403);
    BOOST_CHECK_EQUAL(error_status(gone), "PERMISSION_DENIED");
    BOOST_CHECK_EQUAL(body_json(gone).at("error").at("message").as_string(),
                      "You do not have permission to access the File " + id + " or it may not exist.");
    BOOST_CHECK_EQUAL(c.send(http::verb::delete_, "/v1beta/files/" + id, "", with_key()).result_int(), 403);
    BOOST_CHECK(!srv.file(names[3]));
    BOOST_CHECK_EQUAL(srv.file_names().size(), 24u);
    // an empty list is {}
    sim::server empty(base_config());
    empty.start();
    sync_client c2(empty.port());
    BOOST_CHECK_EQUAL(c2.send(http::verb::get, "/v1beta/files", "", with_key()).body(), "{}\n");
    // polls are counted per file
    for (int i = 0; i < 3; ++i) c.send(http::verb::get, "/v1beta/" + names[0], "", with_key());
    BOOST_CHECK_EQUAL(srv.snapshot().polls_of(names[0]), 3u);
}

BOOST_AUTO_TEST_CASE(generate_content) {
    auto cfg = base_config();
    cfg.processing = sim::processing_time::fixed(std::chrono::hours(1));
    sim::server srv(cfg);
    srv.start();
    sync_client c(srv.port());
    auto processing = srv.add_file("video", "video/mp4");
    auto camel = R"({"contents":[{"parts":[{"text":"Describe this clip"},{"fileData":{"mimeType":"video/mp4","fileUri":"https://generativelanguage.googleapis.com/v1beta/)" + processing + R"("}}]}]})";
    auto res = c.send(http::verb::post, "/v1beta/models/gemini-2.0-flash:generateContent", camel, with_key());
    BOOST_CHECK_EQUAL(res.result_int(), 400);
    BOOST_CHECK_EQUAL(error_status(res), "FAILED_PRECONDITION");
    BOOST_CHECK_EQUAL(body_json(res).at("error").at("message").as_string(),
                      "The File " + processing.substr(6) + " is not in an ACTIVE state and usage is not allowed.");
    // A missing file: 403
    auto missing = R"({"contents":[{"parts":[{"file_data":{"file_uri":"files/abcdefabcdef"}}]}]})";
    auto m = c.send(http::verb::post, "/v1beta/models/gemini-2.0-flash:generateContent", missing, with_key());
    BOOST_CHECK_EQUAL(m.result_int(), 403);
    BOOST_CHECK_EQUAL(error_status(m), "PERMISSION_DENIED");
    // Active file (instant processing), snake_case fileData
    sim::server fast(base_config());
    fast.start();
    sync_client c2(fast.port());
    auto active = fast.add_file("video", "video/mp4");
    auto snake = R"({"contents":[{"role":"user","parts":[{"text":"Describe this clip"},{"file_data":{"mime_type":"video/mp4","file_uri":")" + active + R"("}}]}]})";
    auto ok = c2.send(http::verb::post, "/v1beta/models/gemini-2.0-flash:generateContent", snake, with_key());
    BOOST_REQUIRE_EQUAL(ok.result_int(), 200);
    auto v = body_json(ok).as_object();
    BOOST_CHECK_EQUAL(v.at("candidates").at(0).at("finishReason").as_string(), "STOP");
    BOOST_CHECK_EQUAL(v.at("candidates").at(0).at("content").at("role").as_string(), "model");
    BOOST_CHECK(!v.at("candidates").at(0).at("content").at("parts").at(0).at("text").as_string().empty());
    auto& usage = v.at("usageMetadata").as_object();
    BOOST_CHECK_EQUAL(usage.at("totalTokenCount").as_int64(),
                      usage.at("promptTokenCount").as_int64() + usage.at("candidatesTokenCount").as_int64());
    BOOST_CHECK_EQUAL(v.at("modelVersion").as_string(), "gemini-2.0-flash");
    // Bad bodies
    BOOST_CHECK_EQUAL(c2.send(http::verb::post, "/v1beta/models/m:generateContent", "{", with_key()).result_int(), 400);
    BOOST_CHECK_EQUAL(c2.send(http::verb::post, "/v1beta/models/m:generateContent", "{}", with_key()).result_int(), 400);
    BOOST_CHECK_EQUAL(c2.send(http::verb::post, "/v1beta/models/m:generateContent", R"({"contents":[{"parts":[{"fileData":{}}]}]})", with_key()).result_int(), 400);
    BOOST_CHECK_EQUAL(c2.send(http::verb::post, "/v1beta/models/m:generateContent", R"({"contents":[1]})", with_key()).result_int(), 400);
}

BOOST_AUTO_TEST_CASE(api_key_checks) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    auto none = c.send(http::verb::get, "/v1beta/files");
    BOOST_CHECK_EQUAL(none.result_int(), 403);
    BOOST_CHECK_EQUAL(error_status(none), "PERMISSION_DENIED");
    auto wrong = c.send(http::verb::get, "/v1beta/files", "", {{"x-goog-api-key", "nope"}});
    BOOST_CHECK_EQUAL(wrong.result_int(), 400);
    BOOST_CHECK_EQUAL(error_status(wrong), "INVALID_ARGUMENT");
    BOOST_CHECK_EQUAL(body_json(wrong).at("error").at("details").at(0).at("reason").as_string(), "API_KEY_INVALID");
    BOOST_CHECK(wrong.body().find("nope") == std::string::npos);  // the key is never echoed
    BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files?key=" + key).result_int(), 200);
    BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files?key=bad").result_int(), 400);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/upload/v1beta/files", "", {{"X-Goog-Upload-Protocol", "resumable"}, {"X-Goog-Upload-Command", "start"}}).result_int(), 403);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/v1beta/models/m:generateContent", "{}").result_int(), 403);
    BOOST_CHECK_EQUAL(c.send(http::verb::delete_, "/v1beta/files/abc").result_int(), 403);
    // With no configured key, any non-empty key is valid.
    sim::server open{sim::config()};
    open.start();
    sync_client c2(open.port());
    BOOST_CHECK_EQUAL(c2.send(http::verb::get, "/v1beta/files", "", {{"x-goog-api-key", "anything"}}).result_int(), 200);
    BOOST_CHECK_EQUAL(c2.send(http::verb::get, "/v1beta/files").result_int(), 403);
}

BOOST_AUTO_TEST_CASE(malformed_requests_get_google_errors) {
    auto cfg = base_config();
    cfg.body_limit = 1024;
    sim::server srv(cfg);
    srv.start();
    {
        sync_client c(srv.port());
        BOOST_CHECK_EQUAL(c.send(http::verb::get, "/nope").result_int(), 404);
        BOOST_CHECK_EQUAL(c.send(http::verb::put, "/v1beta/files/abc", "", with_key()).result_int(), 405);
        BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files/UPPER", "", with_key()).result_int(), 400);
        BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files/a/b/c/d/e", "", with_key()).result_int(), 404);
        auto big = c.send(http::verb::post, "/v1beta/models/m:generateContent", std::string(4096, 'x'), with_key());
        BOOST_CHECK_EQUAL(big.result_int(), 413);
        BOOST_CHECK_EQUAL(error_status(big), "INVALID_ARGUMENT");
    }
    {
        sync_client c(srv.port());
        beast::error_code ec;
        auto res = c.send_raw("THIS IS NOT HTTP\r\n\r\n", ec);
        BOOST_REQUIRE(!ec);
        BOOST_CHECK_EQUAL(res.result_int(), 400);
        BOOST_CHECK_EQUAL(error_status(res), "INVALID_ARGUMENT");
    }
    {
        sync_client c(srv.port());
        beast::error_code ec;
        auto res = c.send_raw("GET /v1beta/files HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n", ec);
        BOOST_REQUIRE(!ec);
        BOOST_CHECK_EQUAL(res.result_int(), 400);
    }
    {
        sync_client c(srv.port());
        beast::error_code ec;
        auto res = c.send_raw("GET /%zz%%?key=%% HTTP/1.1\r\nHost: x\r\n\r\n", ec);
        BOOST_REQUIRE(!ec);
        BOOST_CHECK_EQUAL(res.result_int(), 404);
    }
    // Still serving.
    sync_client c(srv.port());
    BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files", "", with_key()).result_int(), 200);
}

BOOST_AUTO_TEST_CASE(stats_and_keep_alive) {
    auto cfg = base_config();
    cfg.threads = 2;
    sim::server srv(cfg);
    srv.start();
    {
        sync_client c(srv.port());
        for (int i = 0; i < 5; ++i) c.send(http::verb::get, "/v1beta/files", "", with_key());
        c.send(http::verb::get, "/v1beta/files");
        auto st = srv.snapshot();
        BOOST_CHECK_EQUAL(st.total_requests, 6u);
        BOOST_CHECK_EQUAL(st.requests(sim::route::list), 6u);
        BOOST_CHECK_EQUAL(st.count(sim::route::list, 200), 5u);
        BOOST_CHECK_EQUAL(st.count(sim::route::list, 403), 1u);
        BOOST_CHECK_EQUAL(st.open_connections, 1u);
        BOOST_CHECK_EQUAL(st.total_connections, 1u);  // keep-alive: one connection
        auto js = body_json(c.send(http::verb::get, "/admin/stats")).as_object();
        BOOST_CHECK_EQUAL(js.at("routes").at("list").at("statuses").at("200").to_number<std::uint64_t>(), 5u);
        BOOST_CHECK_EQUAL(js.at("open_connections").to_number<std::uint64_t>(), 1u);
        BOOST_CHECK_EQUAL(js.at("total_requests").to_number<std::uint64_t>(), 6u);  // admin requests are not counted
        BOOST_CHECK_EQUAL(srv.snapshot().requests(sim::route::admin), 1u);
    }
    srv.reset_stats();
    BOOST_CHECK_EQUAL(srv.snapshot().total_requests, 0u);
}

BOOST_AUTO_TEST_CASE(server_on_caller_context) {
    asio::io_context ctx;
    sim::server srv(ctx, base_config());
    srv.start();
    std::thread t([&] { ctx.run(); });
    {
        sync_client c(srv.port());
        BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files", "", with_key()).result_int(), 200);
        srv.stop();
    }
    t.join();  // stop() closed the acceptor and the connections, so run() returns
    BOOST_CHECK(srv.base_url().starts_with("http://127.0.0.1:"));
}

BOOST_AUTO_TEST_CASE(random_bytes_never_crash_it) {
    sim::server srv(base_config());
    srv.start();
    std::mt19937 rng(5);
    const std::vector<std::string> seeds = {
        "GET /v1beta/files HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /upload/v1beta/files HTTP/1.1\r\nHost: x\r\nx-goog-api-key: test-key\r\nX-Goog-Upload-Protocol: resumable\r\n"
        "X-Goog-Upload-Command: start\r\nX-Goog-Upload-Header-Content-Type: text/plain\r\nContent-Length: 30\r\n\r\n"
        "{'file': {'display_name': 'x'}}",
        "POST /v1beta/models/m:generateContent HTTP/1.1\r\nHost: x\r\nx-goog-api-key: test-key\r\nContent-Length: 60\r\n\r\n"
        "{\"contents\":[{\"parts\":[{\"file_data\":{\"file_uri\":\"files/abc\"}}]}]}",
        "POST /admin/faults HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"faults\": [{\"kind\": \"internal\", \"count\": 1}]}"};
    for (int i = 0; i < 300; ++i) {
        std::string msg = seeds[rng() % seeds.size()];
        int mutations = 1 + static_cast<int>(rng() % 8);
        for (int m = 0; m < mutations && !msg.empty(); ++m) {
            auto pos = rng() % msg.size();
            switch (rng() % 3) {
            case 0: msg[pos] = static_cast<char>(rng() % 256); break;
            case 1: msg.erase(pos, 1 + rng() % 4); break;
            default: msg.insert(pos, 1 + rng() % 3, static_cast<char>(rng() % 256)); break;
            }
        }
        asio::io_context ioc;
        tcp::socket sock(ioc);
        sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port()));
        beast::error_code ec;
        asio::write(sock, asio::buffer(msg), ec);
        sock.shutdown(tcp::socket::shutdown_send, ec);
        char buf[4096];
        while (!ec) sock.read_some(asio::buffer(buf), ec);  // until the server closes
    }
    srv.clear_faults();
    sync_client c(srv.port());
    BOOST_CHECK_EQUAL(c.send(http::verb::get, "/v1beta/files", "", with_key()).result_int(), 200);
}

BOOST_AUTO_TEST_CASE(expect_100_continue) {
    sim::server srv(base_config());
    srv.start();
    sync_client c(srv.port());
    auto t = session_target(c, "", 5, "text/plain");
    beast::error_code ec;
    auto cont = c.send_raw("POST " + t + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                           "X-Goog-Upload-Command: upload, finalize\r\nX-Goog-Upload-Offset: 0\r\n\r\n", ec);
    BOOST_REQUIRE(!ec);
    BOOST_CHECK_EQUAL(cont.result_int(), 100);
    auto res = c.send_raw("hello", ec);
    BOOST_REQUIRE(!ec);
    BOOST_CHECK_EQUAL(res.result_int(), 200);
    BOOST_CHECK_EQUAL(res["x-goog-upload-status"], "final");
}

BOOST_AUTO_TEST_CASE(concurrent_clients_on_several_threads) {
    auto cfg = base_config();
    cfg.threads = 2;
    cfg.faults.faults.push_back(sim::fault::sometimes(sim::fault_kind::internal, sim::route::get, 0.2));
    sim::server srv(cfg);
    srv.start();
    auto name = srv.add_file("x");
    std::atomic<int> ok{0}, failed{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&] {
            sync_client c(srv.port());
            for (int j = 0; j < 200; ++j) {
                auto st = c.send(http::verb::get, "/v1beta/" + name, "", with_key()).result_int();
                (st == 200 ? ok : failed)++;
            }
        });
    for (auto& t : ts) t.join();
    auto st = srv.snapshot();
    BOOST_CHECK_EQUAL(ok + failed, 800);
    BOOST_CHECK_EQUAL(st.requests(sim::route::get), 800u);
    BOOST_CHECK_EQUAL(st.count(sim::route::get, 500), static_cast<std::uint64_t>(failed.load()));
    BOOST_CHECK_EQUAL(st.faults_of("internal"), static_cast<std::uint64_t>(failed.load()));
    BOOST_CHECK_EQUAL(st.polls_of(name), static_cast<std::uint64_t>(ok.load()));
    BOOST_CHECK_EQUAL(st.total_connections, 4u + static_cast<std::uint64_t>(0));
    BOOST_CHECK_GT(failed.load(), 80);
}

BOOST_AUTO_TEST_SUITE_END()
