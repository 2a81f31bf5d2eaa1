# cmake -P script: configure, build and run a consumer project; fail on any step.
foreach(step configure build run)
  if(step STREQUAL "configure")
    set(cmd ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${CONSUMER_BINARY}
        -DCREW_SOURCE_DIR=${CREW_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
        -DCMAKE_BUILD_TYPE=Release)
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
