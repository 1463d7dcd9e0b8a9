# The event log and bus (server/core/events.c, EventService.WatchEvents).
# Included from tests/CMakeLists.txt, which defines NC_TEST_ENV.
#
# integration.events: core-level, against a private PostgreSQL cluster the
# test starts itself (tests/store/pgtest.c), so it may stop and restart it;
# no mocks of libpq. Prints the commit -> delivery latency.
add_executable(test_events store/test_events.c store/pgtest.c)
target_include_directories(test_events PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/store)
target_link_libraries(test_events PRIVATE nc_core PkgConfig::CMOCKA Threads::Threads)
add_test(NAME integration.events COMMAND test_events)
set_tests_properties(integration.events PROPERTIES LABELS integration
                     ENVIRONMENT "${NC_TEST_ENV}" TIMEOUT 240)

# e2e.events: WatchEvents from Python grpcio against the real server.
if(COMMAND nc_e2e_test)
  nc_e2e_test(events test_events)
endif()
