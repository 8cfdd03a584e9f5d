#include "test_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace test_http {

http_response make_response(int status, std::string body, std::string content_type) {
    http_response r{static_cast<bhttp::status>(status), 11};
    r.set(bhttp::field::content_type, content_type);
    r.body() = std::move(body);
    r.prepare_payload();
    r.keep_alive(true);
    return r;
}

server_conn::server_conn(tcp::socket s, asio::ssl::context* tls)
    : tcp_(std::move(s)), timer_(tcp_.get_executor()) {
    if (tls) tls_ = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(tcp_, *tls);
}

asio::awaitable<bool> server_conn::handshake() {
    if (!tls_) co_return true;
    boost::system::error_code ec;
    co_await tls_->async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

asio::awaitable<std::optional<http_request>> server_conn::read_request() {
    http_request req;
    boost::system::error_code ec;
    if (tls_) co_await bhttp::async_read(*tls_, buf_, req, asio::redirect_error(asio::use_awaitable, ec));
    else co_await bhttp::async_read(tcp_, buf_, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return std::nullopt;
    ++requests_read;
    co_return req;
}

asio::awaitable<bool> server_conn::write(http_response res) {
    boost::system::error_code ec;
    if (tls_) co_await bhttp::async_write(*tls_, res, asio::redirect_error(asio::use_awaitable, ec));
    else co_await bhttp::async_write(tcp_, res, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

asio::awaitable<bool> server_conn::write_raw(std::string bytes) {
    boost::system::error_code ec;
    if (tls_) co_await asio::async_write(*tls_, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
    else co_await asio::async_write(tcp_, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

asio::awaitable<void> server_conn::sleep(std::chrono::milliseconds d) {
    if (!tcp_.socket().is_open()) co_return;
    timer_.expires_after(d);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void server_conn::reset() {
    boost::system::error_code ec;
    tcp_.socket().set_option(tcp::socket::linger(true, 0), ec);
    tcp_.socket().close(ec);
    timer_.cancel();
}

void server_conn::close() {
    boost::system::error_code ec;
    tcp_.socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_.socket().close(ec);
    timer_.cancel();
}

script serve(std::function<http_response(const http_request&)> f) {
    return [f = std::move(f)](server_conn& c) -> asio::awaitable<void> {
        for (;;) {
            auto req = co_await c.read_request();
            if (!req) co_return;
            http_response res = f(*req);
            bool keep = req->keep_alive() && res.keep_alive();
            if (!co_await c.write(std::move(res)) || !keep) co_return;
        }
    };
}

struct server::state {
    state(asio::any_io_executor ex, script s, asio::ssl::context* t) : acceptor(ex), run(std::move(s)), tls(t) {}
    tcp::acceptor acceptor;
    script run;
    asio::ssl::context* tls;
    std::vector<std::weak_ptr<server_conn>> conns;
    bool stopped = false;
};

namespace {
struct ignore_exceptions {
    void operator()(std::exception_ptr) const {}
};
// Coroutines are free functions with parameters by value: a coroutine lambda
// with captures would refer to a lambda object that dies first.
asio::awaitable<void> session(std::shared_ptr<server::state> st, std::shared_ptr<server_conn> c,
                              std::shared_ptr<int> open) {
    struct dec {
        std::shared_ptr<int> o;
        ~dec() { --*o; }
    } d{open};
    if (co_await c->handshake()) co_await st->run(*c);
}

asio::awaitable<void> accept_loop(std::shared_ptr<server::state> st, std::shared_ptr<int> acc,
                                  std::shared_ptr<int> open, std::shared_ptr<int> mx) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket s = co_await st->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec || st->stopped) co_return;
        ++*acc;
        ++*open;
        *mx = std::max(*mx, *open);
        auto c = std::make_shared<server_conn>(std::move(s), st->tls);
        st->conns.push_back(c);
        asio::co_spawn(st->acceptor.get_executor(), session(st, c, open), ignore_exceptions{});
    }
}

}  // namespace

server::server(asio::any_io_executor ex, script s, asio::ssl::context* tls, const std::string& address)
    : st_(std::make_shared<state>(ex, std::move(s), tls)),
      accepted_(std::make_shared<int>(0)),
      open_(std::make_shared<int>(0)),
      max_open_(std::make_shared<int>(0)) {
    tcp::endpoint ep(asio::ip::make_address(address), 0);
    st_->acceptor.open(ep.protocol());
    st_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    st_->acceptor.bind(ep);
    st_->acceptor.listen();
    port_ = st_->acceptor.local_endpoint().port();
    std::string host = ep.address().is_v6() ? "[" + address + "]" : address;
    base_ = std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port_);

    asio::co_spawn(ex, accept_loop(st_, accepted_, open_, max_open_), ignore_exceptions{});
}

server::~server() { stop(); }

std::string server::url(const std::string& path) const { return base_ + path; }

void server::stop() {
    st_->stopped = true;
    boost::system::error_code ec;
    st_->acceptor.close(ec);
    for (auto& w : st_->conns)
        if (auto c = w.lock()) c->close();
    st_->conns.clear();
}

// ---- certificates ----

namespace {

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("openssl: ") + what);
}

EVP_PKEY* new_key() {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    check(k != nullptr, "keygen");
    return k;
}

std::string to_pem(X509* x) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

std::string to_pem(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

X509* read_cert(const std::string& pem) {
    BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    check(x != nullptr, "read cert");
    return x;
}

EVP_PKEY* read_key(const std::string& pem) {
    BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    check(k != nullptr, "read key");
    return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "extension");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

X509* new_cert(EVP_PKEY* key, const std::string& cn, long serial) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                               0);
    return x;
}

long next_serial() {
    static long s = 1000;
    return ++s;
}

}  // namespace

pem_pair make_ca(const std::string& common_name) {
    EVP_PKEY* key = new_key();
    X509* x = new_cert(key, common_name, next_serial());
    X509_set_issuer_name(x, X509_get_subject_name(x));
    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x, x, NID_subject_key_identifier, "hash");
    check(X509_sign(x, key, EVP_sha256()) > 0, "sign CA");
    pem_pair p{to_pem(x), to_pem(key)};
    X509_free(x);
    EVP_PKEY_free(key);
    return p;
}

pem_pair make_leaf(const pem_pair& ca, const std::vector<std::string>& dns_names,
                   const std::vector<std::string>& ip_addresses) {
    X509* ca_cert = read_cert(ca.cert);
    EVP_PKEY* ca_key = read_key(ca.key);
    EVP_PKEY* key = new_key();
    X509* x = new_cert(key, dns_names.empty() ? "leaf" : dns_names.front(), next_serial());
    X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
    std::string san;
    for (auto& d : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
    for (auto& i : ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + i;
    add_ext(x, ca_cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, ca_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(x, ca_cert, NID_ext_key_usage, "serverAuth");
    add_ext(x, ca_cert, NID_authority_key_identifier, "keyid:always");
    if (!san.empty()) add_ext(x, ca_cert, NID_subject_alt_name, san);
    check(X509_sign(x, ca_key, EVP_sha256()) > 0, "sign leaf");
    pem_pair p{to_pem(x), to_pem(key)};
    X509_free(x);
    EVP_PKEY_free(key);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    return p;
}

std::unique_ptr<asio::ssl::context> server_tls_context(const pem_pair& leaf) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->use_certificate_chain(asio::buffer(leaf.cert));
    ctx->use_private_key(asio::buffer(leaf.key), asio::ssl::context::pem);
    return ctx;
}

}  // namespace test_http
