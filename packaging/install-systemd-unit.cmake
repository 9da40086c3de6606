# Install-time step (see cmake/Packaging.cmake): installs systemd/vapord.service with its
# ExecStart pointing at the vapord of this install prefix. The source unit names /usr/bin/vapord,
# the package's path; with the prefix /usr the installed unit is the source file unchanged, and
# with cmake's default /usr/local it starts /usr/local/bin/vapord instead of a missing binary.
# The unit is optional, like the other files from other parts of the tree.
#
# Set by the install(CODE) just before this script:
#   vapor_unit_source      the source tree's systemd/vapord.service
#   vapor_unit_staging_dir a build-tree folder to write the adjusted unit into
#   vapor_unit_dir         where to install (absolute, or relative to CMAKE_INSTALL_PREFIX)

if(EXISTS "${vapor_unit_source}")
  if(IS_ABSOLUTE "${vapor_unit_dir}")
    set(vapor_unit_destination "${vapor_unit_dir}")
  else()
    set(vapor_unit_destination "${CMAKE_INSTALL_PREFIX}/${vapor_unit_dir}")
  endif()
  file(READ "${vapor_unit_source}" vapor_unit_text)
  string(REPLACE "/usr/bin/vapord" "${CMAKE_INSTALL_PREFIX}/bin/vapord" vapor_unit_text
         "${vapor_unit_text}")
  file(WRITE "${vapor_unit_staging_dir}/vapord.service" "${vapor_unit_text}")
  # file(INSTALL) adds DESTDIR itself and records the file in install_manifest.txt.
  file(INSTALL DESTINATION "${vapor_unit_destination}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${vapor_unit_staging_dir}/vapord.service")
endif()
