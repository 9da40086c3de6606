# Read by cpack for every generator (CPACK_PROJECT_CONFIG_FILE in cmake/Packaging.cmake).
# Without dpkg-shlibdeps, CPack's DEB generator silently writes a package with no Depends, and
# without `file` it cannot find the binaries to give it: stop with a fix instead.
if(CPACK_GENERATOR STREQUAL "DEB")
  find_program(vapor_dpkg_shlibdeps dpkg-shlibdeps)
  find_program(vapor_file_command file)
  if(NOT vapor_dpkg_shlibdeps OR NOT vapor_file_command)
    message(FATAL_ERROR "cpack -G DEB needs dpkg-shlibdeps and file to compute the package's "
                        "Depends: apt-get install dpkg-dev file")
  endif()
endif()
