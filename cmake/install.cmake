# Install rules and the CMake config package:
#   find_package(asio_resilience 1.0 CONFIG REQUIRED COMPONENTS gemini)
# Each layer has an export set of its own, so that asking for `core` needs
# neither OpenSSL nor Boost.JSON; a component brings the components it builds on.
include(CMakePackageConfigHelpers)

set(RESILIENCE_CONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/asio_resilience)

if(RESILIENCE_SEPARATE_COMPILATION)
  # The libraries of such a build expect Asio's and Beast's bodies from
  # resilience_asio_impl, which is not installed: refuse rather than ship a
  # package that fails to link in a consumer.
  install(CODE "message(FATAL_ERROR \"asio_resilience: a build made with RESILIENCE_SEPARATE_COMPILATION=ON is for this project's own use and cannot be installed; configure with -DRESILIENCE_SEPARATE_COMPILATION=OFF\")")
endif()

install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

foreach(component core http gemini simulator asio_resilience)
  if(component STREQUAL "simulator")
    set(target resilience_sim)
  elseif(component STREQUAL "asio_resilience")
    set(target resilience)
  else()
    set(target resilience_${component})
  endif()
  install(TARGETS ${target} EXPORT asio_resilience_${component}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(EXPORT asio_resilience_${component} NAMESPACE asio_resilience::
          FILE asio_resilience-${component}-targets.cmake DESTINATION ${RESILIENCE_CONFIG_DIR})
endforeach()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/asio_resilience-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/asio_resilience-config.cmake
  INSTALL_DESTINATION ${RESILIENCE_CONFIG_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/asio_resilience-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/asio_resilience-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/asio_resilience-config-version.cmake
        DESTINATION ${RESILIENCE_CONFIG_DIR})
