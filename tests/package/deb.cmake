# cmake -P script: builds the Debian package of a crew build tree (cpack -G DEB) and checks it
# the way a user would use it, without installing it on this machine:
#   - its Depends name Debian's Boost 1.81 packages (each one known to dpkg here);
#   - unpacked, its crew runs the notebook (finding its crew-worker next to it);
#   - unpacked, a find_package consumer builds against its development files and runs.
#   BUILD_DIR, WORK_DIR, CONSUMER_SOURCE, CMAKE_CXX_COMPILER
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

run(cpack -G DEB -B ${WORK_DIR}/out --config ${BUILD_DIR}/CPackConfig.cmake)
file(GLOB deb ${WORK_DIR}/out/crew_*.deb)
list(LENGTH deb n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one crew_*.deb in ${WORK_DIR}/out, found: ${deb}")
endif()

run(dpkg-deb -f ${deb} Depends)
string(STRIP "${out}" depends)
message(STATUS "Depends: ${depends}")
foreach(needed libboost-filesystem1.81.0 libboost-program-options1.81.0 libboost-json1.81.0
               libboost1.81-dev libboost-filesystem1.81-dev)
  string(FIND "${depends}" "${needed}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "Depends lacks ${needed}: ${depends}")
  endif()
endforeach()
# Every dependency is a real Debian package (installed here, since this machine built crew).
string(REPLACE "," ";" parts "${depends}")
foreach(p ${parts})
  string(REGEX REPLACE "\\(.*\\)" "" p "${p}")
  string(STRIP "${p}" p)
  run(dpkg-query -W -f=\${Status} ${p})
  if(NOT out MATCHES "install ok installed")
    message(FATAL_ERROR "dependency ${p} is not an installed Debian package here: ${out}")
  endif()
endforeach()

set(root ${WORK_DIR}/root)
run(dpkg-deb -x ${deb} ${root})
foreach(f usr/bin/crew usr/bin/crew-worker usr/include/crew/process_pool.hpp
          usr/include/crew/worker_runtime.hpp usr/lib/libcrew.a usr/lib/cmake/crew/crewConfig.cmake)
  if(NOT EXISTS ${root}/${f})
    message(FATAL_ERROR "the package lacks /${f}")
  endif()
endforeach()
run(${root}/usr/bin/crew notebook --scale 0.05)
string(FIND "${out}" "2236.5678097446853" at)
if(at EQUAL -1)
  message(FATAL_ERROR "crew notebook from the package did not print long_comp's value:\n${out}")
endif()

run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${WORK_DIR}/consumer
    -DCMAKE_PREFIX_PATH=${root}/usr -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer -j 2)
run(${WORK_DIR}/consumer/consumer)
message(STATUS "${out}")
