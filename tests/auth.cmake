# Unit tests of server/auth, included from tests/CMakeLists.txt.
nc_unit_test(password nc_auth)
nc_unit_test(policy nc_auth)
nc_unit_test(token nc_auth PkgConfig::JANSSON)
