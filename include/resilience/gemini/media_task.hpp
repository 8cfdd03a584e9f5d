#ifndef RESILIENCE_GEMINI_MEDIA_TASK_HPP
#define RESILIENCE_GEMINI_MEDIA_TASK_HPP

// The media task: upload a file, wait until it is ACTIVE, generate content
// from it. The C++ form of the original runGeminiMediaTask.
//
//   resilience::gemini::media_task_options t;
//   t.file_path = "clip.mp4";
//   t.build_contents = [](const resilience::gemini::file& f) {
//       return std::vector<resilience::gemini::content>{
//           {"user", {resilience::gemini::part::from_file(f), resilience::gemini::part::from_text("Describe it")}}};
//   };
//   t.on_status = [](std::string_view s) { std::cout << s << '\n'; };
//   auto r = co_await resilience::gemini::run_media_task(gemini, std::move(t));

#include <resilience/gemini/client.hpp>

#include <functional>
#include <optional>

namespace resilience::gemini {

/// The task's options: call_options (deadline for the whole task, retry
/// overrides, admission, status and event handlers, tag) applied to each of
/// its calls, plus what the task needs.
struct media_task_options : call_options {
    media_task_options() = default;
    std::string file_path;
    std::string mime_type;      ///< default: from the extension
    std::string display_name;   ///< default: the file's base name
    std::string model = "gemini-2.0-flash";
    std::string processing_status = "Processing media file...";  ///< said once the upload is done
    std::string generating_status = "Generating content...";     ///< said once the file is ACTIVE
    std::string completion_status = "Done.";                      ///< said at the end
    /// Builds the request contents from the uploaded (ACTIVE) file. Required.
    std::function<std::vector<content>(const file&)> build_contents;
    /// Poll schedule while PROCESSING (poll_* and max_failed_rounds; its
    /// call_options fields are ignored: the task's apply).
    wait_options wait{};
    /// Delete the uploaded file at the end, also when waiting or generating
    /// failed (best effort; not after cancellation). A file that ended FAILED
    /// is deleted either way. A failure after the upload names the uploaded
    /// file and what became of it ("deleted", "kept", "left on the server: ...").
    bool delete_after = false;
};

struct media_task_result {
    file uploaded;
    generate_result generated;
};

/// Upload, wait until ACTIVE, generate. The first failure ends the task.
boost::asio::awaitable<result<media_task_result>> run_media_task(client& c, media_task_options opts);

/// run_media_task as an Asio asynchronous operation taking any completion token.
///
/// What it does: upload, wait until ACTIVE, generate, as run_media_task.
/// Completion signature: `void(error_code, media_task_result)`.
/// Diagnostics: the overload with `diag` writes the failure's diagnostics
/// there (its message names the uploaded file when the failure came after
/// the upload); cleared on success.
/// Object lifetimes: the client and `diag` must outlive the operation; the
/// options are moved into it (build_contents is called on the client's
/// strand).
/// Executor: runs on the client's internal strand; the handler runs on its
/// associated executor, by default c.get_executor().
/// Per-operation cancellation: terminal, through the handler's associated
/// cancellation slot; ends the current step with operation_aborted (the
/// uploaded file is not deleted after cancellation).
/// Errors: the first failing step's (see gemini::client).
/// Thread safety: as gemini::client's async_ operations.
template <class CompletionToken>
auto async_run_media_task(client& c, media_task_options opts, CompletionToken&& token) {
    return resilience::detail::start_on_client<media_task_result>(
        c, nullptr, [&c, o = std::move(opts)]() mutable { return run_media_task(c, std::move(o)); },
        std::forward<CompletionToken>(token));
}
template <class CompletionToken>
auto async_run_media_task(client& c, media_task_options opts, diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::start_on_client<media_task_result>(
        c, &diag, [&c, o = std::move(opts)]() mutable { return run_media_task(c, std::move(o)); },
        std::forward<CompletionToken>(token));
}

}  // namespace resilience::gemini

#endif
