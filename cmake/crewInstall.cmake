# Install rules, the CMake package (find_package(crew CONFIG)) for the install tree and the
# build tree, and the Debian package (cpack -G DEB).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The library, and the stock worker as crew::crew-worker (a consumer can start it by
# $<TARGET_FILE:crew::crew-worker>).
set(crew_exported crew)
if(TARGET crew-worker)
  list(APPEND crew_exported crew-worker)
endif()
install(TARGETS ${crew_exported} EXPORT crewTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/lib/include/crew DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT crewTargets NAMESPACE crew:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)
# The same targets for a consumer pointed at this build tree (-Dcrew_DIR=<build>).
export(EXPORT crewTargets NAMESPACE crew:: FILE ${PROJECT_BINARY_DIR}/crewTargets.cmake)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/crewConfig.cmake.in
  ${PROJECT_BINARY_DIR}/crewConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/crewConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/crewConfig.cmake ${PROJECT_BINARY_DIR}/crewConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)
if(TARGET crew-cli)
  install(TARGETS crew-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# The installed crew binary's manual (cli.md) and what a pool survives (reliability.md) go
# with the protocol and the embedding guide.
install(FILES ${PROJECT_SOURCE_DIR}/docs/protocol.md ${PROJECT_SOURCE_DIR}/docs/embedding.md
  ${PROJECT_SOURCE_DIR}/docs/cli.md ${PROJECT_SOURCE_DIR}/docs/reliability.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} OPTIONAL)
if(EXISTS ${PROJECT_SOURCE_DIR}/apps/examples/python_worker.py)
  install(FILES ${PROJECT_SOURCE_DIR}/apps/examples/python_worker.py
    DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
endif()

# cpack -G DEB: one package with the binaries and the development files. The binaries link
# libcrew statically and Boost's shared libraries; the development files need Boost's headers
# and its filesystem library (crew::crew links Boost::filesystem).
set(CPACK_PACKAGE_NAME crew)
set(CPACK_PACKAGE_VENDOR "crew")
set(CPACK_PACKAGE_CONTACT "crew maintainers <crew@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libc6 (>= 2.34), libstdc++6 (>= 12), libgcc-s1, libboost-filesystem1.81.0, libboost-program-options1.81.0, libboost-json1.81.0, libboost1.81-dev, libboost-filesystem1.81-dev")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "crew runs work in isolated worker processes: a coordinator keeps a pool of\npersistent workers, sends them typed tasks over pipes or shared memory and\nsurvives their crashes. Contains the crew and crew-worker programs, the\nheaders, the static library and the CMake package (find_package(crew)).")
include(CPack)
