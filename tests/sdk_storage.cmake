# The storage and network clients' tests (included from tests/CMakeLists.txt
# after sdk.cmake and e2e.cmake, which provide nc_test_harness and
# nc_e2e_test):
#   unit.sdk_storage         StorageService and NetworkService wrappers'
#                            argument checks, without a server
#   integration.sdk_storage  the same wrappers against the real server: pools,
#                            volumes, networks, a VM using them (the same binary
#                            with the argument "server")
#   e2e.novactl_storage      novactl pool, volume and network end to end
add_executable(test_sdk_storage ${CMAKE_CURRENT_LIST_DIR}/unit/test_sdk_storage.c)
target_link_libraries(test_sdk_storage PRIVATE nc_test_harness novacron PkgConfig::CMOCKA
                                               Threads::Threads)
add_test(NAME unit.sdk_storage COMMAND test_sdk_storage)
set_tests_properties(unit.sdk_storage PROPERTIES LABELS unit TIMEOUT 60
                                                 ENVIRONMENT "${NC_TEST_ENV}")

# Its own database: the embedded test hypervisor lives in one server process,
# so its pools, volumes and networks must not be shared with other servers.
add_test(NAME pg.db.sdk_storage COMMAND ${CMAKE_CURRENT_LIST_DIR}/pg.sh createdb ${NC_TEST_PG}
                                         sdk_storage)
set_tests_properties(pg.db.sdk_storage PROPERTIES FIXTURES_SETUP sdk_storage_db
                                                  FIXTURES_REQUIRED pg LABELS setup)
add_test(NAME integration.sdk_storage COMMAND test_sdk_storage server)
set_tests_properties(integration.sdk_storage PROPERTIES
  LABELS integration
  TIMEOUT 300
  FIXTURES_REQUIRED "certs;pg;sdk_storage_db"
  ENVIRONMENT "${NC_TEST_ENV}")
set_property(TEST integration.sdk_storage APPEND PROPERTY ENVIRONMENT
  "NC_DATABASE_URL=postgresql:///sdk_storage?host=${NC_TEST_PG}/sock&port=5432&user=novacron")

nc_e2e_test(novactl_storage test_novactl_storage)
