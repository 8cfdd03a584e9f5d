#include <resilience/gemini/media_task.hpp>

#include <boost/asio/this_coro.hpp>

namespace resilience::gemini {
namespace asio = boost::asio;

asio::awaitable<result<media_task_result>> run_media_task(client& c, media_task_options o) {
    if (!o.build_contents)
        co_return failure(make_error_code(resilience::errc::invalid_argument), "media task: build_contents is required");
    // The task's own lines, tagged like its calls'.
    const status_handler& base = o.on_status ? o.on_status : c.options().on_status;
    auto status = [&](const std::string& s) {
        if (base && !s.empty()) base(o.tag.empty() ? s : "[" + o.tag + "] " + s);
    };

    const call_options& call = o;  // every call of the task runs with the task's options
    upload_options up;
    static_cast<call_options&>(up) = call;
    up.mime_type = o.mime_type;
    up.display_name = o.display_name;
    auto uploaded = co_await c.upload(o.file_path, std::move(up));
    if (!uploaded) co_return uploaded.error();

    // A failure after the upload names the uploaded file and what became of
    // it. The task deletes it (best effort, bounded by the task's deadline)
    // with delete_after, and always when it ended FAILED (it can never be
    // used); never after cancellation (a cancelled coroutine can make no
    // further call). Otherwise it is kept for the caller, named.
    auto after_upload = [&](failure f) -> asio::awaitable<failure> {
        f.diag.message += " (uploaded as " + uploaded->name;
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) {
            f.diag.message += ", left on the server: the task was cancelled)";
        } else if (o.delete_after || f.code == errc::file_failed) {
            auto r = co_await c.remove(uploaded->name, call);
            f.diag.message += r ? std::string(", deleted)")
                                : ", left on the server: deleting it failed: " + r.error().what() + ")";
        } else {
            f.diag.message += ", kept)";
        }
        co_return f;
    };

    status(o.processing_status);
    wait_options w = o.wait;
    static_cast<call_options&>(w) = call;
    auto active = co_await c.wait_until_active(uploaded->name, std::move(w));
    if (!active) co_return co_await after_upload(active.error());

    status(o.generating_status);
    std::vector<content> contents = o.build_contents(*active);
    auto generated = co_await c.generate_content(o.model, std::move(contents), call);
    if (!generated) co_return co_await after_upload(generated.error());

    if (o.delete_after) (void)co_await c.remove(active->name, call);
    status(o.completion_status);
    media_task_result r;
    r.uploaded = std::move(*active);
    r.generated = std::move(*generated);
    co_return r;
}

}  // namespace resilience::gemini
