# Fails if the include closure of any of SOURCES reaches a gRPC header, and
# names the chain of includes that got there. server/CMakeLists.txt runs it
# at build time for the supervisor's library (see there for why).
#
#   cmake -DCXX=<compiler> -DCXX_STANDARD=20 -DINCLUDE_DIRS=<dir>|<dir>...
#         -DSOURCES=<file>|<file>... -DSTAMP=<file> -DDEPFILE=<file>
#         -P check_no_grpc_includes.cmake
#
# How it works: each source is preprocessed with -MM -MG -H. -H prints every
# header as it is opened, one dot per level of nesting, system headers
# included, so a stack of the last header seen at each level gives the chain
# to any header. -MM -MG writes the source's (non-system) dependencies, which
# become DEPFILE, so that the check re-runs when one of them changes; -MG
# also lists a header that was not found, which fails the check as well.
# STAMP is written only when every source passes.
foreach(var CXX CXX_STANDARD INCLUDE_DIRS SOURCES STAMP DEPFILE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_no_grpc_includes: ${var} is not set")
  endif()
endforeach()

# gRPC's own headers and the gRPC code protoc generates.
set(GRPC_HEADER "(^|/)grpcpp?/|\\.grpc\\.pb\\.h$")

string(REPLACE "|" ";" include_dirs "${INCLUDE_DIRS}")
string(REPLACE "|" ";" sources "${SOURCES}")
set(include_flags "")
foreach(dir IN LISTS include_dirs)
  if(NOT dir STREQUAL "")
    list(APPEND include_flags "-I${dir}")
  endif()
endforeach()

set(depfile_text "")
foreach(src IN LISTS sources)
  execute_process(
    COMMAND ${CXX} -std=c++${CXX_STANDARD} ${include_flags} -MM -MG -MT ${STAMP} -H ${src}
    RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_VARIABLE tree)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "check_no_grpc_includes: preprocessing ${src} failed:\n${tree}")
  endif()

  # -H lines look like ". /usr/include/grpcpp/alarm.h" (depth = dots).
  string(REPLACE "\n" ";" lines "${tree}")
  set(stack "")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^(\\.+) (.+)$")
      continue()
    endif()
    string(LENGTH "${CMAKE_MATCH_1}" depth)
    set(header "${CMAKE_MATCH_2}")
    list(LENGTH stack n)
    while(n GREATER_EQUAL depth)
      list(POP_BACK stack)
      list(LENGTH stack n)
    endwhile()
    list(APPEND stack "${header}")
    if(header MATCHES "${GRPC_HEADER}")
      string(JOIN "\n    which includes " chain ${stack})
      message(FATAL_ERROR
        "countersd_supervisor must not include gRPC headers (the supervisor forks, and gRPC "
        "does not survive fork() in a process that has used it), but\n"
        "  ${src}\n    includes ${chain}\n"
        "Move what needs gRPC into countersd_handler, behind a gRPC-free header.")
    endif()
  endforeach()

  # A header that was not found (-MG lists it as given, without a path).
  string(REGEX REPLACE "\\\\\n" " " deps "${deps}")
  string(REGEX REPLACE "^[^:]*: *" "" deps "${deps}")
  string(STRIP "${deps}" deps)
  separate_arguments(dep_list UNIX_COMMAND "${deps}")
  foreach(dep IN LISTS dep_list)
    if(NOT IS_ABSOLUTE "${dep}" AND NOT EXISTS "${dep}")
      message(FATAL_ERROR
        "check_no_grpc_includes: ${src} includes '${dep}', which is not found with the include "
        "path of countersd_supervisor; if it is generated gRPC code, it does not belong there.")
    endif()
  endforeach()
  string(APPEND depfile_text "${STAMP}: ${deps}\n")
endforeach()

file(WRITE "${DEPFILE}" "${depfile_text}")
file(WRITE "${STAMP}" "countersd_supervisor includes no gRPC header\n")
