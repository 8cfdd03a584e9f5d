// Asio, Asio's SSL support and Beast compiled once, for this project's own
// builds with -DRESILIENCE_SEPARATE_COMPILATION=ON (off by default). That
// option defines BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION for every translation unit of the build
// tree, and links this file's object into our programs. It is never part of
// an installed or exported target: a program using the library chooses its
// own Asio configuration (Asio's documented separate compilation, which this
// file follows: every file of the program defines the macros, and one file
// includes Asio's, Asio SSL's and Beast's src.hpp), and the library's own
// sources must then be compiled with the same macros.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
