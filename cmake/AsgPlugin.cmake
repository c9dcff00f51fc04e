# asg_add_plugin(<name> KIND <kind> SOURCES <src>... [LIBRARIES <lib>...] [TESTS <test-src>...])
#
# Builds one plugin library, asg_<kind>_<name>.so, into the build's plugin directory, where `asg`
# finds it without configuration. Nothing else in the tree has to be edited to add a plugin: a folder
# with a CMakeLists.txt calling this helper is enough (the parent globs for them). KIND names the file;
# the kind the loader sees is the one the factory declares (make_factory<Interface>).
#
# The library is compiled with hidden visibility and linked with cmake/asg_plugin.map, so it exports
# only `asg_plugin_entry`.
#
# SOURCES may include CUDA files (.cu). They are compiled when the build compiles the CUDA path
# (ASG_WITH_CUDA, see cmake/AsgTorch.cmake) and left out otherwise, so the plugin's C++ must guard the
# calls into them with `#ifdef ASG_WITH_CUDA` and keep a path that runs without them.
#
# TESTS: GoogleTest sources for this plugin. They are built into one test binary that links the
# plugin's objects directly (no dlopen), plus asg::testing, and is registered with ctest (in the tree).
#
# The same helper serves a plugin built against an installed ASG Lab (find_package(asg), asgConfig.cmake): the
# library then lands in the project's build folder, and with enable_testing() a ctest entry <name>.conformance
# runs the installed conformance suite of the plugin's kind against it (`asg plugins test NAME`).
# Both ways the plugin must compile as C++20 (the loader compares the standard in its build fingerprint): a
# lower CMAKE_CXX_STANDARD is refused here, at configure time.
set(ASG_PLUGIN_VERSION_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/asg_plugin.map)
if(NOT DEFINED ASG_PLUGIN_OUTPUT_DIR)
  set(ASG_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR})
endif()

# asg_use_torch_pch(<target> [HIDDEN]): reuse the tree's precompiled <torch/torch.h> (HIDDEN: the plugins' one,
# which matches their hidden visibility). A plugin built against an install compiles without it.
function(asg_use_torch_pch target)
  if(NOT ASG_TORCH_PCH OR NOT TARGET asg_torch_pch)
    return()
  endif()
  if(ARGV1 STREQUAL "HIDDEN")
    target_precompile_headers(${target} REUSE_FROM asg_torch_pch_hidden)
  else()
    target_precompile_headers(${target} REUSE_FROM asg_torch_pch)
  endif()
endfunction()

function(asg_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "KIND" "SOURCES;LIBRARIES;TESTS")
  if(NOT ARG_KIND MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "asg_add_plugin(${name}): KIND '${ARG_KIND}' must be a kind name such as dataset, backbone, metric")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "asg_add_plugin(${name}): SOURCES is empty")
  endif()
  if(DEFINED CMAKE_CXX_STANDARD AND CMAKE_CXX_STANDARD LESS 20)
    message(FATAL_ERROR "asg_add_plugin(${name}): CMAKE_CXX_STANDARD is ${CMAKE_CXX_STANDARD}, but a plugin must be compiled as "
                        "C++20, as ASG Lab ${ASG_VERSION} was (the loader refuses a plugin whose build fingerprint names another "
                        "C++ standard). Set CMAKE_CXX_STANDARD to 20, or leave it unset.")
  endif()
  set(target asg_${ARG_KIND}_${name})
  set(cuda_sources ${ARG_SOURCES})
  list(FILTER cuda_sources INCLUDE REGEX "\\.cu$")
  list(FILTER ARG_SOURCES EXCLUDE REGEX "\\.cu$")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "asg_add_plugin(${name}): SOURCES has no C++ file (a plugin needs its entry point in C++)")
  endif()
  # The plugin code is an object library so the tests can link it without going through dlopen.
  add_library(${target}_objects OBJECT ${ARG_SOURCES})
  if(cuda_sources AND ASG_WITH_CUDA)
    # Apart from the C++ objects, which reuse the C++-only torch precompiled header.
    add_library(${target}_cuda_objects OBJECT ${cuda_sources})
    target_link_libraries(${target}_cuda_objects PRIVATE asg::sdk ${ARG_LIBRARIES})
    set_target_properties(${target}_cuda_objects PROPERTIES CUDA_VISIBILITY_PRESET hidden)
    set(cuda_objects $<TARGET_OBJECTS:${target}_cuda_objects>)
  else()
    set(cuda_objects "")
  endif()
  target_link_libraries(${target}_objects PUBLIC asg::sdk ${ARG_LIBRARIES})
  # Position-independent: the objects go into a shared module (an OBJECT library is not PIC by default outside the
  # tree, which compiles everything with -fPIC).
  set_target_properties(${target}_objects PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
                                                     POSITION_INDEPENDENT_CODE ON)
  asg_use_torch_pch(${target}_objects HIDDEN)

  add_library(${target} MODULE $<TARGET_OBJECTS:${target}_objects> ${cuda_objects})
  target_link_libraries(${target} PRIVATE ${target}_objects)
  target_link_options(${target} PRIVATE "LINKER:--version-script=${ASG_PLUGIN_VERSION_SCRIPT}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${ASG_PLUGIN_VERSION_SCRIPT})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY ${ASG_PLUGIN_OUTPUT_DIR})
  set_property(GLOBAL APPEND PROPERTY ASG_PLUGIN_TARGETS ${target})
  # A plugin whose defaults are a published network's full size (too big for the CPU tests) keeps a
  # `test_params.toml` beside its sources: the conformance suites build it with those values over its
  # defaults. It is copied next to the library, where the suites find it.
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_params.toml)
    configure_file(${CMAKE_CURRENT_SOURCE_DIR}/test_params.toml ${ASG_PLUGIN_OUTPUT_DIR}/${target}.test_params.toml COPYONLY)
  endif()

  if(DEFINED ASG_INSTALL_PREFIX AND NOT TARGET asg::testing)
    # Built against an install: the installed conformance suite of its kind, through the installed asg.
    add_test(NAME ${name}.conformance
             COMMAND ${ASG_INSTALL_PREFIX}/bin/asg plugins test ${name} --plugin-path $<TARGET_FILE:${target}>)
  elseif(ARG_TESTS AND ASG_BUILD_TESTS)
    add_executable(${target}_test ${ARG_TESTS} ${cuda_objects})
    target_link_libraries(${target}_test PRIVATE ${target}_objects asg::testing GTest::gtest_main)
    asg_use_torch_pch(${target}_test)
    gtest_discover_tests(${target}_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS plugin)
  endif()
endfunction()

# Adds every subdirectory (up to `depth` levels below the current one) that has a CMakeLists.txt.
# This is how plugin folders join the build without a central list to edit.
function(asg_add_subdirectories_with_cmakelists)
  file(GLOB_RECURSE lists RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*/CMakeLists.txt)
  list(SORT lists)
  foreach(l ${lists})
    get_filename_component(dir ${l} DIRECTORY)
    # Only the outermost folder with a CMakeLists.txt; it handles its own children.
    set(nested FALSE)
    foreach(other ${lists})
      get_filename_component(odir ${other} DIRECTORY)
      if(NOT odir STREQUAL dir AND dir MATCHES "^${odir}/")
        set(nested TRUE)
      endif()
    endforeach()
    if(NOT nested)
      add_subdirectory(${dir})
    endif()
  endforeach()
endfunction()
