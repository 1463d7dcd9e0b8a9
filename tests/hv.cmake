# hv: the libvirt layer against libvirt's in-process test driver.
nc_unit_test(hv nc_hv)
# hv storage, networks and devices, on the same test driver.
nc_unit_test(hv_storage nc_hv)
