# Compute (issue 4): HostService, VmService, OperationsService end to end on
# the libvirt test driver, and the crash test. Included from
# tests/CMakeLists.txt after e2e.cmake (nc_e2e_test).
nc_e2e_test(compute test_compute)
nc_e2e_test(compute_crash test_compute_crash)
