# hv: the libvirt layer against libvirt's in-process test driver.
nc_unit_test(hv nc_hv)
