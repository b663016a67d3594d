# ctest script: installs components of the build tree into a fresh prefix,
# then configures, builds and runs a consumer project that finds them with
# find_package(countersd), which must print "consumer ok".
#   cmake -DBUILD_DIR=... -DCONSUMER_DIR=... -DWORK_DIR=... \
#         "-DCOMPONENTS=countersd_client_dev;..." "-DEXPECT_FILES=include/...;..." \
#         -P find_package_test.cmake
# COMPONENTS: the install components; EXPECT_FILES: paths under the prefix
# that the install must produce.
foreach(var BUILD_DIR CONSUMER_DIR WORK_DIR COMPONENTS EXPECT_FILES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${step} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${step}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

foreach(component IN LISTS COMPONENTS)
  run("install ${component}" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}"
      --component ${component})
endforeach()
foreach(f IN LISTS EXPECT_FILES)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install did not produce ${prefix}/${f}")
  endif()
endforeach()

# Only the install prefix: the consumer must not see the source or build tree.
# CONSUMER_FLAGS: the sanitizer flags of a sanitized build, whose static
# libraries need them at link time too.
run("configure consumer" ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build"
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}")
run("build consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/build" -j 2)
run("run consumer" "${WORK_DIR}/build/consumer")
if(NOT last_output MATCHES "consumer ok")
  message(FATAL_ERROR "consumer printed: ${last_output}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
