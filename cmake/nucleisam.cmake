# Helpers shared by src/, tests/ and bench/.

# Warnings for our own targets.
function(nucleisam_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
endfunction()

# One precompiled header with <torch/torch.h> for every target that uses LibTorch: on 2 cores
# it takes a translation unit from ~27 s to ~11 s.
function(nucleisam_torch_pch target)
  if(NOT TARGET nucleisam_torch_pch_owner)
    add_library(nucleisam_torch_pch_owner STATIC ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
    target_link_libraries(nucleisam_torch_pch_owner PUBLIC ${TORCH_LIBRARIES})
    target_precompile_headers(nucleisam_torch_pch_owner PRIVATE <torch/torch.h>)
  endif()
  target_precompile_headers(${target} REUSE_FROM nucleisam_torch_pch_owner)
endfunction()

# A static module library nucleisam_<name> from every .cpp in src/<name>/ (or src/<DIR>/ when
# given; not recursive), so new files need no CMake edit.
function(nucleisam_module name)
  cmake_parse_arguments(ARG "TORCH" "DIR" "DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT ARG_DIR)
    set(ARG_DIR ${name})
  endif()
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${ARG_DIR}/*.cpp)
  if(NOT sources)
    return()
  endif()
  add_library(nucleisam_${name} STATIC ${sources})
  target_include_directories(nucleisam_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                                PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(nucleisam_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  if(ARG_TORCH)
    target_link_libraries(nucleisam_${name} PUBLIC ${TORCH_LIBRARIES})
    nucleisam_torch_pch(nucleisam_${name})
  endif()
  nucleisam_warnings(nucleisam_${name})
endfunction()

# One GoogleTest executable per tests/<name>/<stem>.cpp (or tests/<DIR>/<stem>.cpp), named
# test_<name>_<stem>, so a broken or slow-to-build test file never blocks the others.
function(nucleisam_test name)
  cmake_parse_arguments(ARG "TORCH" "DIR" "DEPS" ${ARGN})
  if(NOT ARG_DIR)
    set(ARG_DIR ${name})
  endif()
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/${ARG_DIR}/*.cpp)
  foreach(src ${sources})
    get_filename_component(stem ${src} NAME_WE)
    string(REGEX REPLACE "^test_" "" stem ${stem})
    set(t test_${name}_${stem})
    add_executable(${t} ${src})
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tests ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${t} PRIVATE ${ARG_DEPS} nucleisam_test_support GTest::gtest_main)
    if(ARG_TORCH)
      nucleisam_torch_pch(${t})
    endif()
    nucleisam_warnings(${t})
    gtest_discover_tests(${t} DISCOVERY_TIMEOUT 120
                         PROPERTIES ENVIRONMENT "NUCLEISAM_SHARED=${NUCLEISAM_SHARED_DIR}")
    list(APPEND made ${t})
  endforeach()
  set(NUCLEISAM_TESTS_${name} ${NUCLEISAM_TESTS_${name}} ${made} PARENT_SCOPE)
endfunction()
