# `cmake --install build --prefix P`: the asg binary, the SDK's libraries and headers, the built-in plugins
# (P/lib/asg/plugins), the conformance suite (P/lib/asg/asg_conformance), the benchmark definitions
# (P/share/asg/benchmarks), the plugin templates of `asg new plugin` (P/share/asg/templates), and
# P/lib/cmake/asg/asgConfig.cmake for find_package(asg). Everything finds everything else relative to itself
# (RPATH $ORIGIN, install_layout.h), so a moved prefix still works; LibTorch stays where the wheel is.
include(CMakePackageConfigHelpers)

set(asg_layer_targets asg_base asg_media asg_data asg_text asg_nn asg_sdk asg_runtime asg_engine asg_registry asg_reports asg_serve)
foreach(target ${asg_layer_targets})
  string(REGEX REPLACE "^asg_" "" export_name ${target})
  if(target STREQUAL "asg_sdk")
    set(export_name sdk_headers)  # asgConfig.cmake makes asg::sdk of it and torch
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE $<INSTALL_INTERFACE:include>)
  else()
    target_include_directories(${target} PUBLIC $<INSTALL_INTERFACE:include>)
  endif()
endforeach()
target_compile_features(asg_sdk INTERFACE cxx_std_20)

install(TARGETS ${asg_layer_targets} EXPORT asgTargets LIBRARY DESTINATION lib ARCHIVE DESTINATION lib)
install(TARGETS asg RUNTIME DESTINATION bin)
foreach(layer base media data text nn sdk runtime engine)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/core/${layer}/include/ DESTINATION include)
endforeach()
foreach(part store reports serve)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/registry/${part}/include/ DESTINATION include)
endforeach()
install(FILES ${CMAKE_BINARY_DIR}/core/generated/asg/version.h DESTINATION include/asg)  # core/CMakeLists.txt generates it

get_property(asg_plugin_targets GLOBAL PROPERTY ASG_PLUGIN_TARGETS)
install(TARGETS ${asg_plugin_targets} LIBRARY DESTINATION lib/asg/plugins)
install(DIRECTORY ${ASG_PLUGIN_OUTPUT_DIR}/ DESTINATION lib/asg/plugins FILES_MATCHING PATTERN "*.test_params.toml")
if(TARGET asg_conformance)
  install(TARGETS asg_conformance RUNTIME DESTINATION lib/asg)
  # What the conformance suite gives text encoders that need a vocabulary file.
  install(FILES ${PROJECT_SOURCE_DIR}/tests/fixtures/clip_bpe_merges.txt ${PROJECT_SOURCE_DIR}/tests/fixtures/wordpiece_vocab.txt
          DESTINATION share/asg/conformance)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/experiments/benchmarks/ DESTINATION share/asg/benchmarks FILES_MATCHING PATTERN "*.toml")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/core/cli/templates/ DESTINATION share/asg/templates)

file(STRINGS ${PROJECT_SOURCE_DIR}/core/sdk/include/asg/plugin.h asg_api_lines REGEX "kPluginApiM(aj|in)or = [0-9]+;")
string(REGEX REPLACE ".*kPluginApiMajor = ([0-9]+);.*kPluginApiMinor = ([0-9]+);.*" "\\1.\\2" ASG_PLUGIN_API "${asg_api_lines}")
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/asgConfig.cmake.in ${CMAKE_BINARY_DIR}/cmake/asgConfig.cmake
                              INSTALL_DESTINATION lib/cmake/asg)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/asgConfigVersion.cmake VERSION ${PROJECT_VERSION}
                                 COMPATIBILITY SameMinorVersion)
install(EXPORT asgTargets NAMESPACE asg:: DESTINATION lib/cmake/asg)
install(FILES ${CMAKE_BINARY_DIR}/cmake/asgConfig.cmake ${CMAKE_BINARY_DIR}/cmake/asgConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/AsgPlugin.cmake ${PROJECT_SOURCE_DIR}/cmake/AsgTorch.cmake
              ${PROJECT_SOURCE_DIR}/cmake/asg_plugin.map
        DESTINATION lib/cmake/asg)
