#ifndef RESILIENCE_REDIS_TEST_SERVER_HPP
#define RESILIENCE_REDIS_TEST_SERVER_HPP

// A redis-server of a test's own: started on a free loopback port (no
// persistence, a temporary folder), ready once it says so on its output
// (waiting on that I/O only), killed (and reaped) at the end. spawn() and
// reap() start and end other children (peers, benchmark members) the same way.
//
// posix_spawn rather than Boost.Process: Boost 1.81's process v2 does not
// compile header-only with g++ 12 here, and v1 needs Boost.Filesystem.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace resilience::redis::test_server {

inline bool redis_server_available(const char* path) { return ::access(path, X_OK) == 0; }

/// A free loopback port (bound and released: the usual small race).
inline unsigned short free_port() {
    boost::asio::io_context ctx;
    boost::asio::ip::tcp::acceptor a(ctx, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

/// A child process started with posix_spawn: a pipe from its standard output
/// and, when asked for, one to its standard input.
struct child_process {
    pid_t pid = -1;
    FILE* out = nullptr;  ///< its standard output
    FILE* in = nullptr;   ///< its standard input (with_stdin), else null
};

/// Starts args[0] (a path) with args; throws std::runtime_error if it cannot.
inline child_process spawn(const std::vector<std::string>& args, bool with_stdin = false) {
    // Close-on-exec: a child inherits no other child's pipe (dup2 clears it on 0 and 1).
    int out[2], in[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (with_stdin && ::pipe2(in, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        throw std::runtime_error("pipe failed");
    }
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    if (with_stdin) {
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_addclose(&fa, in[1]);
    }
    child_process c;
    const int rc = ::posix_spawn(&c.pid, copy[0].c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    if (with_stdin) ::close(in[0]);
    if (rc != 0) {
        ::close(out[0]);
        if (with_stdin) ::close(in[1]);
        throw std::runtime_error("cannot start " + copy[0]);
    }
    c.out = ::fdopen(out[0], "r");
    if (with_stdin) c.in = ::fdopen(in[1], "w");
    return c;
}

/// Closes the pipes, signals the child (0: none) and reaps it; its exit status
/// as waitpid gives it.
inline int reap(child_process& c, int signal = 0) {
    if (c.in) std::fclose(c.in);
    if (c.out) std::fclose(c.out);
    c.in = c.out = nullptr;
    int st = 0;
    if (c.pid > 0) {
        if (signal) ::kill(c.pid, signal);
        ::waitpid(c.pid, &st, 0);
        c.pid = -1;
    }
    return st;
}

class redis_server {
public:
    explicit redis_server(std::string binary, std::vector<std::string> extra = {}, unsigned short port = 0)
        : binary_(std::move(binary)), extra_(std::move(extra)), port_(port ? port : free_port()) {
        char tmpl[] = "/tmp/resilience-redis-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        start();
    }
    ~redis_server() {
        kill();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    unsigned short port() const { return port_; }
    std::string url(const std::string& auth = "") const {
        return "redis://" + (auth.empty() ? "" : auth + "@") + "127.0.0.1:" + std::to_string(port_);
    }
    pid_t pid() const { return proc_.pid; }

    /// Starts it (again, on the same port) and waits until it accepts connections.
    void start() {
        std::vector<std::string> args{binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", dir_, "--daemonize", "no"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        proc_ = spawn(args);
        // Read its log until it is ready (or it exits: the port was taken).
        char line[1024];
        bool ready = false;
        while (std::fgets(line, sizeof line, proc_.out)) {
            if (std::string(line).find("Ready to accept connections") != std::string::npos) {
                ready = true;
                break;
            }
        }
        if (!ready) {
            kill();
            throw std::runtime_error("redis-server did not start on port " + std::to_string(port_));
        }
    }
    /// SIGKILL and reap.
    void kill() { (void)reap(proc_, SIGKILL); }
    /// SIGSTOP / SIGCONT: a Redis that stops answering, then answers again.
    void pause() { ::kill(proc_.pid, SIGSTOP); }
    void resume() { ::kill(proc_.pid, SIGCONT); }

private:
    std::string binary_;
    std::vector<std::string> extra_;
    unsigned short port_;
    std::string dir_;
    child_process proc_;
};

}  // namespace resilience::redis::test_server

#endif
