# SDK tests (included from tests/CMakeLists.txt, which provides
# PkgConfig::CMOCKA, the `certs` fixture and NC_TEST_ENV):
#   unit.sdk                 libnovacron without a server
#   unit.sdk_session         its sessions and identity wrappers, without a server
#   integration.sdk_session  sessions against the real server (refresh, reuse, logout)
#   integration.sdk_health   libnovacron against the real server
# nc_test_harness (integration/harness.c) starts and stops a real server;
# every integration test can link it.
add_executable(test_sdk ${CMAKE_CURRENT_LIST_DIR}/unit/test_sdk.c)
target_link_libraries(test_sdk PRIVATE novacron PkgConfig::CMOCKA)
add_test(NAME unit.sdk COMMAND test_sdk)
set_tests_properties(unit.sdk PROPERTIES LABELS unit TIMEOUT 60 ENVIRONMENT "${NC_TEST_ENV}")

# unit.sdk_session: credentials, sessions and identity wrappers, no server.
add_executable(test_sdk_session ${CMAKE_CURRENT_LIST_DIR}/unit/test_sdk_session.c)
target_link_libraries(test_sdk_session PRIVATE novacron PkgConfig::CMOCKA)
add_test(NAME unit.sdk_session COMMAND test_sdk_session)
set_tests_properties(unit.sdk_session PROPERTIES LABELS unit TIMEOUT 60
                                                 ENVIRONMENT "${NC_TEST_ENV}")

add_library(nc_test_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/integration/harness.c)
target_include_directories(nc_test_harness PUBLIC ${CMAKE_CURRENT_LIST_DIR}/integration)

add_executable(test_sdk_health ${CMAKE_CURRENT_LIST_DIR}/integration/test_sdk_health.c)
target_link_libraries(test_sdk_health PRIVATE nc_test_harness novacron PkgConfig::CMOCKA
                                              Threads::Threads)
add_test(NAME integration.sdk_health COMMAND test_sdk_health)
set_tests_properties(integration.sdk_health PROPERTIES
  LABELS integration
  TIMEOUT 180
  FIXTURES_REQUIRED "certs;pg"
  ENVIRONMENT "NC_SERVER_BIN=$<TARGET_FILE:novacron-server>;NC_CERT_DIR=${CMAKE_BINARY_DIR}/test-certs;${NC_TEST_ENV}")

# A test server for the runtime itself (driven by tests/e2e/test_runtime.py).
add_executable(runtime_server integration/runtime_server.c)
target_link_libraries(runtime_server PRIVATE nc_rpc nc_util)

# integration.sdk_session: login, single-flight refresh, reuse detection,
# logout and API keys against the real server.
add_executable(test_sdk_session_server ${CMAKE_CURRENT_LIST_DIR}/integration/test_sdk_session.c)
target_link_libraries(test_sdk_session_server PRIVATE nc_test_harness novacron PkgConfig::CMOCKA
                                                      Threads::Threads)
add_test(NAME integration.sdk_session COMMAND test_sdk_session_server)
set_tests_properties(integration.sdk_session PROPERTIES
  LABELS integration
  TIMEOUT 180
  FIXTURES_REQUIRED "certs;pg"
  ENVIRONMENT "${NC_TEST_ENV}")
