# integration.store: server/store against a private PostgreSQL cluster that
# the test starts itself (tests/store/pgtest.c); no mocks of libpq.
add_executable(test_store store/test_store.c store/pgtest.c)
target_include_directories(test_store PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/store)
target_link_libraries(test_store PRIVATE nc_store PkgConfig::CMOCKA Threads::Threads)
add_test(NAME integration.store COMMAND test_store)
set_tests_properties(integration.store PROPERTIES LABELS integration ENVIRONMENT "${NC_TEST_ENV}"
                     TIMEOUT 120)
