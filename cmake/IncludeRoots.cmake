# vapor_include_roots(<target> <module> PUBLIC_HEADERS <header>...)
#
# Gives the library of lib/<module> two include roots in the build tree, both spelled as the
# sources include them ("<module>/<file>.hpp"):
# - a private root holding the whole lib/<module> folder (its own sources' view: every header of
#   the module, detail/ included);
# - a public root holding only the listed headers, which is all that a library, test or program
#   linking the module sees through it.
# So a module sees only the modules it links, and none of their detail/ headers: an include of
# anything else fails to compile instead of quietly coupling two modules.
function(vapor_include_roots target module)
  cmake_parse_arguments(ARG "" "" "PUBLIC_HEADERS" ${ARGN})
  set(root ${PROJECT_BINARY_DIR}/include/${module})
  file(REMOVE_RECURSE ${root})  # a header dropped from the list must not linger
  file(MAKE_DIRECTORY ${root}/public/${module} ${root}/private)
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${root}/private/${module} SYMBOLIC)
  foreach(header IN LISTS ARG_PUBLIC_HEADERS)
    if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${header})
      message(FATAL_ERROR "vapor_include_roots: lib/${module}/${header} does not exist")
    endif()
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${header} ${root}/public/${module}/${header}
         SYMBOLIC)
  endforeach()
  target_include_directories(${target} PUBLIC ${root}/public PRIVATE ${root}/private)
endfunction()

# White-box tests of a module's internals (its detail/ headers): the module's private root.
function(vapor_see_internals target module)
  target_include_directories(${target} PRIVATE ${PROJECT_BINARY_DIR}/include/${module}/private)
endfunction()
