# Install rules and the CMake package (find_package(crew CONFIG)).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS crew EXPORT crewTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/lib/include/crew DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT crewTargets NAMESPACE crew:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/crewConfig.cmake.in
  ${PROJECT_BINARY_DIR}/crewConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/crewConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/crewConfig.cmake ${PROJECT_BINARY_DIR}/crewConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)
if(TARGET crew-worker)
  install(TARGETS crew-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(TARGET crew-cli)
  install(TARGETS crew-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
