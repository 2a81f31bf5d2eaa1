# CREW_SANITIZE=address,undefined or thread: applied to every crew target through
# crew_target_sanitizers(), never through global flags.
function(crew_target_sanitizers target)
  if(CREW_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${CREW_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${CREW_SANITIZE})
  endif()
endfunction()
