# cmake -P script: configure, build and run a consumer project; fail on any step.
#   CONSUMER_SOURCE, CONSUMER_BINARY   the consumer project and where to build it
#   CONSUMER_ARGS                      extra configure arguments (;-separated)
#   INSTALL_FROM, INSTALL_PREFIX       first stage `cmake --install INSTALL_FROM` there
if(INSTALL_FROM)
  file(REMOVE_RECURSE ${INSTALL_PREFIX})
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${INSTALL_FROM} --prefix ${INSTALL_PREFIX}
    OUTPUT_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake --install ${INSTALL_FROM} --prefix ${INSTALL_PREFIX} failed (${rc})")
  endif()
  foreach(f include/crew/process_pool.hpp bin/crew bin/crew-worker lib/cmake/crew/crewConfig.cmake
            lib/cmake/crew/crewConfigVersion.cmake)
    if(NOT EXISTS ${INSTALL_PREFIX}/${f})
      message(FATAL_ERROR "the install lacks ${f}")
    endif()
  endforeach()
endif()
file(REMOVE_RECURSE ${CONSUMER_BINARY})
foreach(step configure build run)
  if(step STREQUAL "configure")
    set(cmd ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${CONSUMER_BINARY}
        -DCREW_SOURCE_DIR=${CREW_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
        -DCMAKE_BUILD_TYPE=Release ${CONSUMER_ARGS})
    if(COMPILER_LAUNCHER)
      list(APPEND cmd -DCMAKE_CXX_COMPILER_LAUNCHER=${COMPILER_LAUNCHER})
    endif()
  elseif(step STREQUAL "build")
    set(cmd ${CMAKE_COMMAND} --build ${CONSUMER_BINARY} -j 2)
  else()
    set(cmd ${CONSUMER_BINARY}/consumer)
  endif()
  execute_process(COMMAND ${cmd} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer ${step} failed (${rc}): ${cmd}")
  endif()
endforeach()
