#ifndef RESILIENCE_REDIS_TEST_SERVER_HPP
#define RESILIENCE_REDIS_TEST_SERVER_HPP

// A redis-server of a test's own: started on a free loopback port (no
// persistence, a temporary folder), ready once it says so on its output
// (waiting on that I/O only), killed (and reaped) at the end.
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
    pid_t pid() const { return pid_; }

    /// Starts it (again, on the same port) and waits until it accepts connections.
    void start() {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
        std::vector<std::string> args{binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", dir_, "--daemonize", "no"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        const int rc = ::posix_spawn(&pid_, binary_.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(fds[1]);
        if (rc != 0) {
            ::close(fds[0]);
            throw std::runtime_error("cannot start " + binary_);
        }
        // Read its log until it is ready (or it exits: the port was taken).
        out_ = ::fdopen(fds[0], "r");
        char line[1024];
        bool ready = false;
        while (std::fgets(line, sizeof line, out_)) {
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
    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
            pid_ = -1;
        }
        if (out_) {
            std::fclose(out_);
            out_ = nullptr;
        }
    }
    /// SIGSTOP / SIGCONT: a Redis that stops answering, then answers again.
    void pause() { ::kill(pid_, SIGSTOP); }
    void resume() { ::kill(pid_, SIGCONT); }

private:
    std::string binary_;
    std::vector<std::string> extra_;
    unsigned short port_;
    std::string dir_;
    pid_t pid_ = -1;
    FILE* out_ = nullptr;
};

}  // namespace resilience::redis::test_server

#endif
