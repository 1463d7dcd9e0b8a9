# The compute clients' tests (included from tests/CMakeLists.txt after
# sdk.cmake and e2e.cmake, which provide nc_test_harness and nc_e2e_test):
#   unit.sdk_compute         typed wrappers, operation results and the event
#                            watch of libnovacron, without a server
#   integration.sdk_compute  VMs, operations and events against the real
#                            server (embedded test:///default host)
#   e2e.novactl_compute      the same flows through novactl
add_executable(test_sdk_compute ${CMAKE_CURRENT_LIST_DIR}/unit/test_sdk_compute.c)
target_link_libraries(test_sdk_compute PRIVATE novacron PkgConfig::CMOCKA)
add_test(NAME unit.sdk_compute COMMAND test_sdk_compute)
set_tests_properties(unit.sdk_compute PROPERTIES LABELS unit TIMEOUT 60
                                                 ENVIRONMENT "${NC_TEST_ENV}")

add_executable(test_sdk_compute_server ${CMAKE_CURRENT_LIST_DIR}/integration/test_sdk_compute.c)
target_link_libraries(test_sdk_compute_server PRIVATE nc_test_harness novacron PkgConfig::CMOCKA
                                                      Threads::Threads)
# Its own database: the embedded test hypervisor lives in one server process,
# so VMs must not be shared with the other tests' servers.
add_test(NAME pg.db.sdk_compute COMMAND ${CMAKE_CURRENT_LIST_DIR}/pg.sh createdb ${NC_TEST_PG}
                                         sdk_compute)
set_tests_properties(pg.db.sdk_compute PROPERTIES FIXTURES_SETUP sdk_compute_db
                                                  FIXTURES_REQUIRED pg LABELS setup)
add_test(NAME integration.sdk_compute COMMAND test_sdk_compute_server)
set_tests_properties(integration.sdk_compute PROPERTIES
  LABELS integration
  TIMEOUT 300
  FIXTURES_REQUIRED "certs;pg;sdk_compute_db"
  ENVIRONMENT "${NC_TEST_ENV}")
set_property(TEST integration.sdk_compute APPEND PROPERTY ENVIRONMENT
  "NC_DATABASE_URL=postgresql:///sdk_compute?host=${NC_TEST_PG}/sock&port=5432&user=novacron")

nc_e2e_test(novactl_compute test_novactl_compute)
