# Storage (StorageService) and the VM device side of VmService (disks from
# volumes, NICs on networks) end to end on the libvirt test driver, and a
# server restart that must restore pools and volumes. Included from
# tests/CMakeLists.txt after e2e.cmake (nc_e2e_test).
nc_e2e_test(storage test_storage)
nc_e2e_test(vm_devices test_vm_devices)
