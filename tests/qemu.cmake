# The real-hypervisor (qemu) stage: tests that need libvirtd's qemu:///system.
# scripts/test brings libvirtd up with scripts/lib/libvirtd.sh (see
# docs/hypervisor-stage.md), runs the tests labelled `qemu` with NC_QEMU_URI
# set, and takes it down again; the normal passes exclude the label.
nc_e2e_test(qemu test_qemu)
set_tests_properties(e2e.qemu PROPERTIES LABELS "e2e;qemu" TIMEOUT 600)

# The C SDK's side of the stage: examples/c/vm_lifecycle.c, built here against
# the in-tree library and run by test_qemu.py (NC_VM_LIFECYCLE).
add_executable(vm_lifecycle ${CMAKE_SOURCE_DIR}/examples/c/vm_lifecycle.c)
target_link_libraries(vm_lifecycle PRIVATE novacron)
set_property(TEST e2e.qemu APPEND PROPERTY ENVIRONMENT
             NC_VM_LIFECYCLE=$<TARGET_FILE:vm_lifecycle>)

# Storage pools, volumes and networks on the real hypervisor.
nc_e2e_test(qemu_storage test_qemu_storage)
set_tests_properties(e2e.qemu_storage PROPERTIES LABELS "e2e;qemu" TIMEOUT 900)
