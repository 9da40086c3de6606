# Install rules and the Debian package (CPack DEB).
#
#   cmake --install build/release                      # under CMAKE_INSTALL_PREFIX (/usr/local)
#   cmake --install build/release --prefix /usr        # where the .deb puts things
#   cd build/release && cpack -G DEB                   # vapor_<version>_<arch>.deb, prefix /usr
#
# Layout (prefix-relative unless absolute):
#   bin/vapord                                (daemon/CMakeLists.txt)
#   ${VAPOR_SYSTEMD_UNIT_DIR}/vapord.service  lib/systemd/system by default
#   share/vapor/                              pristine examples: vapord.yaml, jobs.yaml, demo/,
#                                             prometheus/, alertmanager/, grafana/, RUNBOOK.md
#   ${VAPOR_CONFIG_DIR}/vapord.yaml, jobs.yaml  /etc/vapor by default; never overwritten
#
# Files other parts of the tree provide (the unit, the Prometheus, Alertmanager and Grafana
# folders, the runbook) are optional (OPTIONAL, or an EXISTS check in the install script): they
# are looked for when installing, not when configuring, so one added later is picked up without
# re-running cmake.
# tests/packaging checks that every one of them that exists in the source tree gets installed.

include(GNUInstallDirs)

# /usr/lib/systemd/system for the package (the same folder as /lib/systemd/system on Debian 12's
# merged /usr), /usr/local/lib/systemd/system for cmake's default prefix; systemd reads both.
set(VAPOR_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where vapord.service is installed; a relative path is relative to the install prefix")
set(VAPOR_CONFIG_DIR "/etc/vapor" CACHE STRING
    "Where the default vapord.yaml and jobs.yaml are installed when absent; a relative path is \
relative to the install prefix (use etc/vapor for an unprivileged install)")
set(VAPOR_PACKAGE_MAINTAINER "Vapor maintainers <vapor-maintainers@example.org>" CACHE STRING
    "Maintainer field of the Debian package")

set(vapor_data_dir "${CMAKE_INSTALL_DATADIR}/vapor")

# The unit, with ExecStart adjusted to the install prefix (packaging/install-systemd-unit.cmake).
install(CODE "set(vapor_unit_source [[${PROJECT_SOURCE_DIR}/systemd/vapord.service]])
set(vapor_unit_staging_dir [[${PROJECT_BINARY_DIR}/packaging/unit]])
set(vapor_unit_dir [[${VAPOR_SYSTEMD_UNIT_DIR}]])")
install(SCRIPT packaging/install-systemd-unit.cmake)

install(FILES config/vapord.yaml config/jobs.yaml DESTINATION "${vapor_data_dir}")
# The drop-in for hosts that run real trainers: an example, never active by itself.
install(FILES systemd/vapord.service.d/runner.conf DESTINATION "${vapor_data_dir}/systemd")
install(DIRECTORY config/demo DESTINATION "${vapor_data_dir}")
install(DIRECTORY config/prometheus config/alertmanager DESTINATION "${vapor_data_dir}" OPTIONAL)
install(DIRECTORY grafana/provisioning grafana/dashboards
        DESTINATION "${vapor_data_dir}/grafana" OPTIONAL)
install(FILES RUNBOOK.md DESTINATION "${vapor_data_dir}" OPTIONAL)

# The default /etc/vapor files. A plain install(FILES) would overwrite an administrator's edited
# vapord.yaml or queue on every `cmake --install`, so this step copies each file only when it is
# absent from $DESTDIR${VAPOR_CONFIG_DIR}; the pristine copies stay in share/vapor for comparison.
# The .deb is built by the same rule into an empty staging tree, so the package always carries
# both files; there they are listed as conffiles (packaging/conffiles.in), so dpkg keeps an
# edited file across upgrades, installs a new default over one nobody touched, asks when both
# changed, and removes them only on purge -- better than copy-if-absent, which could never
# deliver a new default.
install(CODE "set(vapor_config_source_dir [[${PROJECT_SOURCE_DIR}/config]])
set(vapor_config_dir [[${VAPOR_CONFIG_DIR}]])")
install(SCRIPT packaging/install-default-config.cmake)

# --- Debian package -------------------------------------------------------------------------

if(IS_ABSOLUTE "${VAPOR_CONFIG_DIR}")
  set(vapor_package_config_dir "${VAPOR_CONFIG_DIR}")
else()
  set(vapor_package_config_dir "/usr/${VAPOR_CONFIG_DIR}")
endif()
set(vapor_packaging_dir "${PROJECT_BINARY_DIR}/packaging")
configure_file(packaging/conffiles.in "${vapor_packaging_dir}/conffiles" @ONLY)

set(CPACK_PACKAGE_NAME "vapor")
set(CPACK_PACKAGE_VENDOR "Vapor")
set(CPACK_PACKAGE_CONTACT "${VAPOR_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "training-run monitor daemon with Prometheus metrics")
# CPack joins the summary and this text into the Description field, indenting each line; an
# empty line becomes the " ." paragraph separator. Lines are kept under 80 columns by hand.
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "vapord runs training jobs from a YAML queue as deterministic simulations\n"
  "(loss, accuracy, epochs, ETA; injectable crash, NaN, stall and slowdown\n"
  "faults), records every step in SQLite, resumes after a crash from the last\n"
  "committed step, and publishes the runs as Prometheus metrics, a JSON API\n"
  "and a WebSocket feed.\n"
  "\n"
  "The package ships a hardened systemd unit, which it does not start, the\n"
  "default configuration in /etc/vapor, and Prometheus alert rules, an\n"
  "Alertmanager example, Grafana provisioning and dashboard, and a runbook in\n"
  "/usr/share/vapor.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${VAPOR_PACKAGE_MAINTAINER}")
# Depends comes from dpkg-shlibdeps (dpkg-dev) run on the installed vapord.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "prometheus, prometheus-alertmanager")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "grafana")
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${vapor_packaging_dir}/conffiles"
    "${PROJECT_SOURCE_DIR}/packaging/postinst"
    "${PROJECT_SOURCE_DIR}/packaging/prerm"
    "${PROJECT_SOURCE_DIR}/packaging/postrm")
# Maintainer scripts 0755, conffiles 0644, whatever the source files' modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Refuses to build a .deb without dpkg-shlibdeps, which would otherwise silently drop Depends.
set(CPACK_PROJECT_CONFIG_FILE "${PROJECT_SOURCE_DIR}/packaging/CPackProjectConfig.cmake")

set(CPACK_GENERATOR DEB)

include(CPack)
