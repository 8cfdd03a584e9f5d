// libFuzzer target for the simulator's request handling, in-process: the
// input is the byte stream of one connection; each request is read with the
// server's own Beast parser and limits, routed (classify), met by the fault
// engine (admin requests may install fault plans), and answered by the API or
// admin handlers or a fault's answer, exactly as the network loop does,
// without sockets. The clock (manual) moves one second per request, so files
// finish processing and upload sessions age. Every answer must be a valid
// HTTP status, serialize, and a JSON answer must be valid JSON (except the
// malformed_json fault's, made that way on purpose).
//
// In a request target, "@F" stands for a file stored before the run and "@U"
// for the upload session the last upload start created, so that inputs can
// chain start, upload, query and get.
//
// Build (clang only): see test/fuzz/CMakeLists.txt.
// Run:   mkdir -p /tmp/new && build-fuzz/test/fuzz/fuzz_sim -runs=1000000 /tmp/new test/fuzz/corpus/sim
#include "impl.hpp"

#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

namespace {

namespace http = boost::beast::http;
namespace sim = resilience::sim;
namespace detail = resilience::sim::detail;

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
        s.replace(pos, from.size(), to);
}

bool is_transport(sim::fault_kind k) {
    return k == sim::fault_kind::reset_before_headers || k == sim::fault_kind::reset_after_headers ||
           k == sim::fault_kind::truncated_body || k == sim::fault_kind::malformed_json;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static boost::asio::io_context ctx;
    resilience::testing::manual_clock clk;
    sim::config cfg;
    cfg.api_key = "k";
    cfg.time = &clk;
    cfg.processing = sim::processing_time::uniform(std::chrono::seconds(1), std::chrono::seconds(3));
    cfg.fail_share = 0.2;
    cfg.body_limit = 1 << 16;
    detail::server_impl s(cfg, &ctx);
    const std::string file_id = s.files.add_file("hello", "text/plain", "hello.txt", clk.now()).substr(6);
    std::string upload_id = "none";

    std::string_view in(reinterpret_cast<const char*>(data), size);
    for (int requests = 0; !in.empty() && requests < 64; ++requests) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(s.cfg.body_limit);
        parser.header_limit(64 * 1024);
        parser.eager(true);
        boost::beast::error_code ec;
        std::size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
        if (ec == http::error::need_more) break;  // the connection ends mid-request: nothing to answer
        if (ec) break;                            // the server answers 400/413 and closes
        in.remove_prefix(used);
        if (!parser.is_done()) break;
        detail::request& req = parser.get();
        std::string target(req.target());
        replace_all(target, "@F", file_id);
        replace_all(target, "@U", upload_id);
        req.target(target);

        clk.advance(std::chrono::seconds(1));
        const auto now = clk.now();
        detail::target_info t = detail::classify(req);
        detail::decision d = s.faults.decide(t.r, now);
        detail::response res;
        bool malformed_on_purpose = false;
        if (d.from == detail::decision::source::outage || d.from == detail::decision::source::quota ||
            (d.from == detail::decision::source::rule && !is_transport(d.answer.kind))) {
            res = detail::fault_response(s, d, req.version(), req.keep_alive(), now);
        } else {
            malformed_on_purpose = d.from == detail::decision::source::rule;
            res = t.r == sim::route::admin ? detail::handle_admin(s, req, t) : detail::handle_api(s, req, t, now);
        }
        const int status = static_cast<int>(res.result_int());
        if (status < 200 || status > 599) std::abort();
        if (auto url = res["x-goog-upload-url"]; !url.empty()) {
            auto pos = url.find("upload_id=");
            if (pos == boost::beast::string_view::npos) std::abort();
            auto id = url.substr(pos + 10);
            upload_id = std::string(id.substr(0, id.find('&')));
        }
        if (!malformed_on_purpose && !res.body().empty() &&
            res[http::field::content_type].starts_with("application/json")) {
            boost::system::error_code jec;
            (void)boost::json::parse(res.body(), jec);
            if (jec) {
                std::fprintf(stderr, "fuzz_sim: %s %s: a %d answer whose JSON does not parse (%s):\n%s\n",
                             std::string(req.method_string()).c_str(), target.c_str(), status, jec.message().c_str(),
                             res.body().c_str());
                std::abort();
            }
        }
        std::ostringstream out;
        out << res;
        if (out.str().empty()) std::abort();
    }
    return 0;
}
