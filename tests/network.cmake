# Networks (issue 5): NetworkService end to end on the libvirt test driver.
# Included from tests/CMakeLists.txt after e2e.cmake (nc_e2e_test).
nc_e2e_test(network test_network)
