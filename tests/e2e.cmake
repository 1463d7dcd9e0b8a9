# End-to-end tests: foreign clients (Python grpcio, buf curl over reflection,
# the examples, scripts/run) against the real server binary. Python stdlib
# unittest under the system interpreter (Debian's python3-grpcio and
# python3-protobuf); each test starts its own servers on 127.0.0.1:0 with TLS.
# Included from tests/CMakeLists.txt, which defines NC_TEST_ENV.
set(NC_E2E_PYTHON /usr/bin/python3)
set(NC_E2E_DIR ${CMAKE_CURRENT_SOURCE_DIR}/e2e)

function(nc_e2e_test name module)
  add_test(NAME e2e.${name}
           COMMAND ${NC_E2E_PYTHON} -m unittest -v ${module}
           WORKING_DIRECTORY ${NC_E2E_DIR})
  set_tests_properties(e2e.${name} PROPERTIES
    ENVIRONMENT "${NC_TEST_ENV};PYTHONDONTWRITEBYTECODE=1"
    FIXTURES_REQUIRED "certs;pg"
    LABELS e2e
    TIMEOUT 300)
endfunction()

nc_e2e_test(python_client test_python_client)
nc_e2e_test(reflection test_reflection)
nc_e2e_test(buf_curl test_buf_curl)
nc_e2e_test(examples test_examples)
nc_e2e_test(run_script test_run_script)
nc_e2e_test(tls_reload test_tls_reload)
nc_e2e_test(c_example test_c_example)
nc_e2e_test(runtime test_runtime)
nc_e2e_test(novactl test_novactl)
nc_e2e_test(identity test_identity)
nc_e2e_test(novactl_identity test_novactl_identity)
nc_e2e_test(novactl_session test_novactl_session)
nc_e2e_test(authz_matrix test_authz_matrix)
