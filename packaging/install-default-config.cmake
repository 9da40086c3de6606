# Install-time step (see cmake/Packaging.cmake): puts the default vapord.yaml and jobs.yaml into
# the configuration folder, each only if it is not there already, so that `cmake --install`
# never overwrites a file an administrator has edited. Honours DESTDIR like every install rule.
#
# Set by the install(CODE) just before this script:
#   vapor_config_source_dir  the source tree's config/ folder
#   vapor_config_dir         where to install (absolute, or relative to CMAKE_INSTALL_PREFIX)

if(IS_ABSOLUTE "${vapor_config_dir}")
  set(vapor_config_destination "${vapor_config_dir}")
else()
  set(vapor_config_destination "${CMAKE_INSTALL_PREFIX}/${vapor_config_dir}")
endif()

foreach(vapor_config_name IN ITEMS vapord.yaml jobs.yaml)
  set(vapor_config_installed "$ENV{DESTDIR}${vapor_config_destination}/${vapor_config_name}")
  if(EXISTS "${vapor_config_installed}" OR IS_SYMLINK "${vapor_config_installed}")
    message(STATUS "Keeping: ${vapor_config_installed} (already present; the default is in "
                   "share/vapor/${vapor_config_name})")
  else()
    # file(INSTALL) adds DESTDIR itself and records the file in install_manifest.txt.
    file(INSTALL DESTINATION "${vapor_config_destination}" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES "${vapor_config_source_dir}/${vapor_config_name}")
  endif()
endforeach()
