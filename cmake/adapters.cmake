# What the optional adapters (adapters/*) share: each is a library of its own,
# behind its own option, and a component of the config package with an export
# set of its own (cmake/asio_resilience-config.cmake.in loads it by name).

# resilience_adapter_option(<option> <found variable> <help>)
#   Declares <option>: ON by default when this is the top project and the
#   adapter's dependency was found (the variable named is true), else OFF (ON
#   without it fails in the adapter's folder).
function(resilience_adapter_option option found help)
  if(PROJECT_IS_TOP_LEVEL AND ${found})
    set(default ON)
  else()
    set(default OFF)
  endif()
  option(${option} "${help}" ${default})
endfunction()

# resilience_add_adapter(<name> <source>...)
#   The library asio_resilience_<name> (asio_resilience::<name>, exported as
#   <name>) from the calling folder's sources: C++20, its include/ folder
#   public, linked to asio_resilience::core. With RESILIENCE_INSTALL, installed
#   as component <name>: the headers, the library and the export set
#   asio_resilience_<name> (asio_resilience-<name>-targets.cmake). The caller
#   links the adapter's own dependencies.
function(resilience_add_adapter name)
  set(target asio_resilience_${name})
  add_library(${target} ${ARGN})
  add_library(asio_resilience::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC asio_resilience::core PRIVATE $<BUILD_INTERFACE:resilience_build>)
  if(RESILIENCE_INSTALL)
    install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    install(TARGETS ${target} EXPORT ${target}
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
            RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    install(EXPORT ${target} NAMESPACE asio_resilience::
            FILE asio_resilience-${name}-targets.cmake DESTINATION ${RESILIENCE_CONFIG_DIR})
  endif()
endfunction()
