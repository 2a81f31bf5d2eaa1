# crew_target_warnings(<target>): the project's warning set, applied PRIVATE so that
# consumers of the library never inherit it.
function(crew_target_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion
      -Wno-sign-conversion -Wold-style-cast -Wcast-align
      -Woverloaded-virtual -Wimplicit-fallthrough>)
endfunction()
