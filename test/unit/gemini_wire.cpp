#include <resilience/gemini/wire.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

using namespace resilience;
using namespace resilience::gemini;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(gemini_wire)

BOOST_AUTO_TEST_CASE(file_resource_as_the_service_writes_it) {
    auto f = parse_file(R"({
  "name": "files/4if4o2bqvugf",
  "displayName": "Big Buck Bunny",
  "mimeType": "video/mp4",
  "sizeBytes": "64657027",
  "createTime": "2024-08-26T08:24:56.068012Z",
  "updateTime": "2024-08-26T08:25:03.977029Z",
  "expirationTime": "2024-08-28T08:24:56.049455995Z",
  "sha256Hash": "Zjc4ZjM5",
  "uri": "https://generativelanguage.googleapis.com/v1beta/files/4if4o2bqvugf",
  "state": "ACTIVE",
  "source": "UPLOADED",
  "videoMetadata": {"videoDuration": "596s"},
  "someFutureField": [1, 2, 3]
})");
    BOOST_REQUIRE(f);
    BOOST_TEST(f->name == "files/4if4o2bqvugf");
    BOOST_TEST(f->display_name == "Big Buck Bunny");
    BOOST_TEST(f->size_bytes == 64657027);
    BOOST_TEST((f->state == file_state::active));
    BOOST_TEST(f->uri.ends_with("/files/4if4o2bqvugf"));
    BOOST_TEST(!f->error.has_value());
}

BOOST_AUTO_TEST_CASE(upload_answer_wraps_the_file_and_unknown_states_are_tolerated) {
    auto f = parse_file(R"({"file": {"name": "files/abc", "state": "ARCHIVED", "sizeBytes": 12}})");
    BOOST_REQUIRE(f);
    BOOST_TEST(f->name == "files/abc");
    BOOST_TEST((f->state == file_state::unknown));
    BOOST_TEST(f->state_text == "ARCHIVED");
    BOOST_TEST(f->size_bytes == 12);
}

BOOST_AUTO_TEST_CASE(failed_file_carries_its_error) {
    auto f = parse_file(R"({"name": "files/x1", "state": "FAILED", "error": {"code": 13, "message": "Video decode failed"}})");
    BOOST_REQUIRE(f);
    BOOST_TEST((f->state == file_state::failed));
    BOOST_REQUIRE(f->error.has_value());
    BOOST_TEST(f->error->code == 13);
    BOOST_TEST(f->error->message == "Video decode failed");
}

BOOST_AUTO_TEST_CASE(broken_bodies_are_clear_errors) {
    for (std::string_view body : {"", "{", "[]", "null", "{\"state\": \"ACTIVE\"}", "<html>502</html>"}) {
        auto f = parse_file(body);
        BOOST_TEST_CONTEXT(body) {
            BOOST_TEST(!f);
            BOOST_TEST((f.error().code == resilience::http::errc::malformed_response));
            BOOST_TEST(!f.error().diag.message.empty());
        }
    }
    BOOST_TEST(!parse_file_page("[1,2]"));
    BOOST_TEST(!parse_file_page(R"({"files": 3})"));
    BOOST_TEST(!parse_generate_result("not json"));
}

namespace {
bool same_file(const file& a, const file& b) {
    return a.name == b.name && a.display_name == b.display_name && a.mime_type == b.mime_type &&
           a.size_bytes == b.size_bytes && a.create_time == b.create_time && a.update_time == b.update_time &&
           a.expiration_time == b.expiration_time && a.sha256_hash == b.sha256_hash && a.uri == b.uri &&
           a.state == b.state && a.state_text == b.state_text && a.source == b.source &&
           a.error.has_value() == b.error.has_value() &&
           (!a.error || (a.error->code == b.error->code && a.error->message == b.error->message));
}
}  // namespace

// parse_file reads the JSON as it streams (no tree); a files.list page is
// read from a parsed tree. The same File object must read the same through
// both, whatever shape its members take: duplicates (the last wins), values
// of the wrong type, escapes, numbers out of range, nesting.
BOOST_AUTO_TEST_CASE(file_reader_agrees_with_the_tree_reader) {
    const std::string big(5000, 'x');
    const std::string cases[] = {
        R"({"name":"files/a","displayName":"d","mimeType":"m","sizeBytes":"7","createTime":"c","updateTime":"u",)"
        R"("expirationTime":"e","sha256Hash":"h","uri":"x","state":"ACTIVE","source":"UPLOADED"})",
        R"({"name":"files/a","name":"files/b"})",
        R"({"name":"files/a","displayName":"one","displayName":2})",
        R"({"name":"files/a","displayName":{"x":"y"},"mimeType":["a"],"uri":null,"source":true})",
        R"({"name":"files/a","sizeBytes":12,"sizeBytes":"x12"})",
        R"({"name":"files/a","sizeBytes":-5})",
        R"({"name":"files/a","sizeBytes":18446744073709551615})",
        R"({"name":"files/a","sizeBytes":1.5e3})",
        R"({"name":"files/a","sizeBytes":{"v":1}})",
        R"({"name":"files/a","sizeBytes":[1]})",
        R"({"name":"files/a","sizeBytes":"-42"})",
        R"({"name":"files/a","sizeBytes":" 42"})",
        R"({"name":"files/\u00e9\n\"q\"","displayName":"\ud83d\ude00 tab\t","st\u0061te":"FAILED"})",
        R"({"name":"files/a","error":{"code":"13","message":"m"}})",
        R"({"name":"files/a","error":{"code":13.5,"message":5}})",
        R"({"name":"files/a","error":{"code":1,"message":"m"},"error":3})",
        R"({"name":"files/a","error":3,"error":{"message":"late"}})",
        R"({"name":"files/a","error":{"code":1,"message":"m","error":{"code":2}},"x":{"name":"files/no"}})",
        R"({"name":"files/a","error":{"code":99999999999,"message":"m"}})",
        R"({"name":"files/a","deep":[[[{"name":"files/no","error":{"code":1}}]]],"state":"PROCESSING"})",
        R"({"name":"files/a","file":[{"name":"files/no"}]})",
        R"({"name":"files/a","state":"STATE_UNSPECIFIED"})",
        R"({"name":")" + big + R"(","uri":")" + big + R"("})",
        R"({")" + big + R"(":"k","name":"files/long-key"})",
    };
    for (const std::string& body : cases) {
        BOOST_TEST_CONTEXT(body.substr(0, 120)) {
            auto streamed = parse_file(body);
            auto page = parse_file_page(R"({"files":[)" + body + "]}");
            BOOST_REQUIRE(page);
            BOOST_REQUIRE(page->files.size() == 1u);
            const file& tree = page->files[0];
            BOOST_REQUIRE(streamed.has_value() == !tree.name.empty());
            if (streamed) BOOST_TEST(same_file(*streamed, tree));
            // The same object under "file" (an upload's answer) reads the same.
            auto wrapped = parse_file(R"({"name":"files/outer","file":)" + body + "}");
            BOOST_REQUIRE(wrapped.has_value() == streamed.has_value());
            if (wrapped) BOOST_TEST(same_file(*wrapped, *streamed));
        }
    }
    // The last "file" wins; when it is not an object, the top object is the File.
    auto last = parse_file(R"({"file":{"name":"files/first"},"file":{"name":"files/second"}})");
    BOOST_REQUIRE(last);
    BOOST_TEST(last->name == "files/second");
    auto outer = parse_file(R"({"name":"files/outer","file":{"name":"files/inner"},"file":7})");
    BOOST_REQUIRE(outer);
    BOOST_TEST(outer->name == "files/outer");
    // Invalid JSON, whatever the reader: trailing data, depth beyond json::parse's limit, bad UTF-8.
    const std::string too_deep = R"({"name":"files/a","x":)" + std::string(40, '[') + std::string(40, ']') + "}";
    for (const std::string& body : {std::string(R"({"name":"files/a"} x)"), too_deep,
                                    std::string("{\"name\":\"files/\xff\"}"), std::string(R"({"name":"files/a",})")}) {
        BOOST_TEST_CONTEXT(body) {
            auto f = parse_file(body);
            BOOST_TEST(!f);
            BOOST_TEST(!parse_file_page(R"({"files":[)" + body + "]}"));
            if (!f) BOOST_TEST(f.error().diag.message.starts_with("file resource is not valid JSON"));
        }
    }
}

BOOST_AUTO_TEST_CASE(list_pages) {
    auto p = parse_file_page(R"({"files": [{"name": "files/a"}, {"name": "files/b"}], "nextPageToken": "t2"})");
    BOOST_REQUIRE(p);
    BOOST_TEST(p->files.size() == 2u);
    BOOST_TEST(p->next_page_token == "t2");
    auto empty = parse_file_page("{}");
    BOOST_REQUIRE(empty);
    BOOST_TEST(empty->files.empty());
    BOOST_TEST(empty->next_page_token.empty());
}

BOOST_AUTO_TEST_CASE(generate_answer) {
    auto r = parse_generate_result(
        R"({"candidates":[{"content":{"parts":[{"text":"A rabbit "},{"text":"wakes up."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":87,"totalTokenCount":96},"modelVersion":"gemini-2.0-flash"})");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->text == "A rabbit wakes up.");
    BOOST_TEST(r->finish_reason == "STOP");
    BOOST_TEST(r->usage.prompt_tokens == 9);
    BOOST_TEST(r->usage.candidates_tokens == 87);
    BOOST_TEST(r->usage.total_tokens == 96);
    BOOST_TEST(r->model_version == "gemini-2.0-flash");
}

BOOST_AUTO_TEST_CASE(generate_request_uses_camel_case_file_data) {
    file f;
    f.uri = "https://example.test/v1beta/files/abc";
    f.mime_type = "video/mp4";
    std::vector<content> contents{content{"user", {part::from_text("Describe this clip"), part::from_file(f)}}};
    std::string body = make_generate_request(contents);
    BOOST_TEST(body.find(R"("fileData":{"mimeType":"video/mp4","fileUri":"https://example.test/v1beta/files/abc"})") !=
               std::string::npos);
    BOOST_TEST(body.find(R"({"text":"Describe this clip"})") != std::string::npos);
    BOOST_TEST(make_upload_start_body("Big \"Buck\"") == R"({"file":{"displayName":"Big \"Buck\""}})");
}

BOOST_AUTO_TEST_CASE(rate_limit_envelope_with_retry_info) {
    std::string body = R"({"error": {"code": 429, "message": "You exceeded your current quota", "status": "RESOURCE_EXHAUSTED",
  "details": [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
    {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "d", "url": "u"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "15s"}]}})";
    failure f = decode_error(429, body);
    BOOST_TEST((f.code == resilience::http::errc::too_many_requests));
    BOOST_TEST((classify(f.code) == error_kind::retryable_rate_limit));
    BOOST_TEST(f.diag.http_status == 429);
    BOOST_TEST(f.diag.status == "RESOURCE_EXHAUSTED");
    BOOST_TEST(f.diag.message == "HTTP 429: You exceeded your current quota");
    BOOST_TEST(f.diag.quota_id == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier");
    BOOST_REQUIRE(f.diag.retry_after.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(*f.diag.retry_after).count() == 15);
}

BOOST_AUTO_TEST_CASE(per_day_and_storage_quotas_are_not_retried) {
    failure day = decode_error(429, R"({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
      "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
                  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.837906927s"}]}})");
    BOOST_TEST((day.code == resilience::gemini::errc::quota_exhausted));
    BOOST_TEST(!is_retryable(classify(day.code)));
    BOOST_TEST(day.diag.message.find("per-day quota") != std::string::npos);
    BOOST_TEST(!day.diag.retry_after.has_value());

    failure storage = decode_error(429, R"({"error": {"code": 429, "message": "storage full", "status": "RESOURCE_EXHAUSTED",
      "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "FileStorageBytesPerProject"}]},
                  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9223372036854775807s"}]}})");
    BOOST_TEST((storage.code == resilience::gemini::errc::quota_exhausted));
    BOOST_TEST(storage.diag.message.find("file storage quota") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(other_envelopes_and_plain_text) {
    failure bad_key = decode_error(400, R"({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}})");
    BOOST_TEST((bad_key.code == resilience::http::errc::client_error));
    BOOST_TEST(bad_key.diag.reason == "API_KEY_INVALID");

    failure missing = decode_error(403, R"([{"error": {"code": 403, "message": "You do not have permission to access the File x or it may not exist.", "status": "PERMISSION_DENIED"}}])");
    BOOST_TEST((missing.code == resilience::http::errc::forbidden));
    BOOST_TEST(missing.diag.status == "PERMISSION_DENIED");
    BOOST_TEST((classify(missing.code) == error_kind::non_retryable_auth));

    failure text = decode_error(400, "Upload chunk size must be a multiple of 8388608 bytes\nmore lines");
    BOOST_TEST(text.diag.message == "HTTP 400: Upload chunk size must be a multiple of 8388608 bytes");
    BOOST_TEST((text.code == resilience::http::errc::client_error));

    failure overloaded = decode_error(503, "", "120");
    BOOST_TEST((overloaded.code == resilience::http::errc::server_error));
    BOOST_TEST(overloaded.diag.message == "HTTP 503");
    BOOST_REQUIRE(overloaded.diag.retry_after.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(*overloaded.diag.retry_after).count() == 120);

    failure broken = decode_error(500, "{\"error\": {\"code\": 500, \"mess");  // truncated JSON
    BOOST_TEST((broken.code == resilience::http::errc::server_error));
    BOOST_TEST(!broken.diag.message.empty());
}

// Google's envelope is read by the Gemini layer; the HTTP layer gives the
// code, the first line and Retry-After, which wins over RetryInfo.
BOOST_AUTO_TEST_CASE(envelope_over_the_http_failure) {
    failure both = decode_error(429, R"({"error": {"code": 429, "message": "", "status": "RESOURCE_EXHAUSTED",
      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "15s"}]}})", "3");
    BOOST_TEST((both.code == resilience::http::errc::too_many_requests));
    BOOST_TEST(both.diag.status == "RESOURCE_EXHAUSTED");
    BOOST_TEST(both.diag.message == "HTTP 429");
    BOOST_REQUIRE(both.diag.retry_after.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(*both.diag.retry_after).count() == 3);

    resilience::diagnostics d;
    d.message = "kept";
    BOOST_TEST(!resilience::gemini::read_google_error("upstream connect error", d));
    BOOST_TEST(!resilience::gemini::read_google_error(R"({"message": "no error member"})", d));
    BOOST_TEST(d.message == "kept");
    BOOST_TEST(resilience::gemini::read_google_error(
        R"({"error": {"message": "m", "status": "UNAVAILABLE", "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "PerMinute"}, {"quotaId": "FileStorageBytesPerProject"}, {"quotaId": "Other"}]}]}})", d));
    BOOST_TEST(d.status == "UNAVAILABLE");
    BOOST_TEST(d.message == "m");
    BOOST_TEST(d.quota_id == "FileStorageBytesPerProject");  // a lasting quota wins over the first named
    BOOST_TEST(resilience::gemini::read_google_error(R"({"error": {"message": ")" + std::string(5000, 'x') + R"("}})", d));
    BOOST_TEST(d.message.size() < 600u);
}

BOOST_AUTO_TEST_CASE(mime_types_and_names) {
    BOOST_TEST(mime_type_for("clip.mp4") == "video/mp4");
    BOOST_TEST(mime_type_for("/a/b/Photo.JPG") == "image/jpeg");
    BOOST_TEST(mime_type_for("noext") == "application/octet-stream");
    BOOST_TEST(mime_type_for("dir.v2/file") == "application/octet-stream");
    BOOST_TEST(normalize_file_name("abc123") == "files/abc123");
    BOOST_TEST(normalize_file_name("files/abc123") == "files/abc123");
    BOOST_TEST(normalize_file_name("https://generativelanguage.googleapis.com/v1beta/files/abc123") == "files/abc123");
    BOOST_TEST(normalize_file_name("files/ABC").empty());
    BOOST_TEST(normalize_file_name("-abc").empty());
    BOOST_TEST(normalize_file_name("files/../x").empty());
    BOOST_TEST(normalize_file_name("").empty());
}

BOOST_AUTO_TEST_CASE(redact_secret_scrubs_every_occurrence) {
    std::string t = "k=SECRETKEY1 and again SECRETKEY1SECRETKEY1";
    redact_secret(t, "SECRETKEY1");
    BOOST_TEST(t == "k=[redacted] and again [redacted][redacted]");
    std::string same = "nothing here";
    redact_secret(same, "");
    BOOST_TEST(same == "nothing here");
    // A key that contains the mark itself cannot loop.
    std::string loop = "[redacted]";
    redact_secret(loop, "[redacted]");
    BOOST_TEST(loop == "[redacted]");
}

BOOST_AUTO_TEST_CASE(terminal_safe_neutralises_controls_and_escapes) {
    BOOST_TEST(terminal_safe("plain text, caf\xc3\xa9") == "plain text, caf\xc3\xa9");
    BOOST_TEST(terminal_safe("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
    BOOST_TEST(terminal_safe("a\nb\tc\rd") == "a\\x0ab\\x09c\\x0dd");
    BOOST_TEST(terminal_safe("a\nb\tc\rd", true) == "a\nb\tc\\x0dd");
    BOOST_TEST(terminal_safe("del\x7f") == "del\\x7f");
    BOOST_TEST(terminal_safe("csi\xc2\x9b" "2J") == "csi\\u009b2J");              // C1 CSI as UTF-8
    BOOST_TEST(terminal_safe("bidi\xe2\x80\xae" "evil") == "bidi\\u202eevil");    // right-to-left override
    BOOST_TEST(terminal_safe("raw\x9b\xff") == "raw\\x9b\\xff");               // not UTF-8
    BOOST_TEST(terminal_safe(std::string("nul\0x", 5)) == "nul\\x00x");
    for (std::string s : {"\x1b]0;title\x07", "\xc2\x9b", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf"}) {
        const std::string out = terminal_safe(s);
        BOOST_TEST_CONTEXT(out) {
            for (unsigned char c : out) BOOST_TEST((c >= 0x20 && c < 0x7f));
        }
    }
}

BOOST_AUTO_TEST_CASE(utf8_validation) {
    BOOST_TEST(is_valid_utf8("ascii"));
    BOOST_TEST(is_valid_utf8("\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\xac"));
    BOOST_TEST(!is_valid_utf8("\xff"));
    BOOST_TEST(!is_valid_utf8("\xc0\xaf"));          // overlong
    BOOST_TEST(!is_valid_utf8("\xed\xa0\x80"));      // surrogate
    BOOST_TEST(!is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
    BOOST_TEST(!is_valid_utf8("\xe6\x97"));          // truncated
}

BOOST_AUTO_TEST_CASE(json_for_a_terminal_keeps_its_meaning) {
    const std::string in = "[\"a\xc2\x9b" "b\",\"c\xe2\x80\xae" "d\",\"e\xff" "f\"]";
    const std::string out = json_terminal_safe(in);
    BOOST_TEST(out == "[\"a\\u009bb\",\"c\\u202ed\",\"e\\ufffdf\"]");
}

BOOST_AUTO_TEST_CASE(model_names) {
    BOOST_TEST(is_valid_model_name("gemini-2.0-flash"));
    BOOST_TEST(is_valid_model_name("models/gemini-1.5-pro_001"));
    BOOST_TEST(!is_valid_model_name(""));
    BOOST_TEST(!is_valid_model_name("models/"));
    BOOST_TEST(!is_valid_model_name("gemini/../x"));
    BOOST_TEST(!is_valid_model_name("a b"));
    BOOST_TEST(!is_valid_model_name(std::string(129, 'a')));
}

BOOST_AUTO_TEST_CASE(a_file_as_json_reads_back_as_the_same_file) {
    auto f = parse_file(R"({"name":"files/abc","displayName":"clip","mimeType":"video/mp4","sizeBytes":"42",)"
                        R"("state":"FAILED","uri":"https://x/files/abc","sha256Hash":"aGFzaA==",)"
                        R"("updateTime":"2026-01-01T00:00:00Z","error":{"code":13,"message":"bad codec"}})");
    BOOST_REQUIRE(f.has_value());
    const boost::json::object o = to_json(*f);
    BOOST_TEST(o.at("sizeBytes").as_int64() == 42);
    BOOST_TEST(o.at("state").as_string() == "FAILED");
    BOOST_TEST(o.at("error").at("message").as_string() == "bad codec");
    BOOST_TEST(!o.contains("createTime"));  // empty fields are left out
    auto back = parse_file(boost::json::serialize(o));
    BOOST_REQUIRE(back.has_value());
    BOOST_TEST(back->name == f->name);
    BOOST_TEST(back->display_name == f->display_name);
    BOOST_TEST(back->size_bytes == f->size_bytes);
    BOOST_TEST(back->uri == f->uri);
    BOOST_TEST(back->update_time == f->update_time);
    BOOST_TEST((back->state == file_state::failed));
    BOOST_TEST(back->error->code == 13);
}

BOOST_AUTO_TEST_SUITE_END()
