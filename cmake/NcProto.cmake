# Code generation: protobuf-c sources for the NovaCron API, the well-known
# types it uses, grpc.health.v1 and grpc.reflection (v1, v1alpha), plus a
# descriptor set (with imports) embedded in the server for reflection.
set(NC_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
set(NC_PROTO_DIR ${CMAKE_SOURCE_DIR}/proto)
set(NC_WKT_DIR /usr/include)
set(NC_GRPC_PROTO_DIR /usr/share/grpc-proto)

file(GLOB NC_API_PROTOS CONFIGURE_DEPENDS ${NC_PROTO_DIR}/novacron/v1/*.proto)
set(NC_WKT_PROTOS any duration empty field_mask timestamp wrappers)

# nc_protoc_c(<out-var-sources> <include-root> <relative .proto paths...>)
function(nc_protoc_c out_srcs root)
  set(srcs)
  foreach(rel IN LISTS ARGN)
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(c ${NC_GEN_DIR}/${base}.pb-c.c)
    set(h ${NC_GEN_DIR}/${base}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${NC_GEN_DIR}
      COMMAND ${PROTOC_C} -I${NC_PROTO_DIR} -I${NC_GRPC_PROTO_DIR} -I${NC_WKT_DIR}
              --c_out=${NC_GEN_DIR} ${root}/${rel}
      DEPENDS ${root}/${rel}
      COMMENT "protoc-c ${rel}"
      VERBATIM)
    list(APPEND srcs ${c})
  endforeach()
  set(${out_srcs} ${srcs} PARENT_SCOPE)
endfunction()

set(_api_rel)
foreach(p IN LISTS NC_API_PROTOS)
  file(RELATIVE_PATH r ${NC_PROTO_DIR} ${p})
  list(APPEND _api_rel ${r})
endforeach()
set(_wkt_rel)
foreach(n IN LISTS NC_WKT_PROTOS)
  list(APPEND _wkt_rel google/protobuf/${n}.proto)
endforeach()

nc_protoc_c(NC_API_SRCS ${NC_PROTO_DIR} ${_api_rel})
nc_protoc_c(NC_WKT_SRCS ${NC_WKT_DIR} ${_wkt_rel})
nc_protoc_c(NC_HEALTH_SRCS ${NC_GRPC_PROTO_DIR} grpc/health/v1/health.proto)
nc_protoc_c(NC_REFLECTION_SRCS ${NC_GRPC_PROTO_DIR}
            grpc/reflection/v1/reflection.proto
            grpc/reflection/v1alpha/reflection.proto)
nc_protoc_c(NC_DESCRIPTOR_SRCS ${NC_WKT_DIR} google/protobuf/descriptor.proto)

# Messages shared by the SDK and the server: the API, WKTs, health.
add_library(nc_proto OBJECT ${NC_API_SRCS} ${NC_WKT_SRCS} ${NC_HEALTH_SRCS})
target_include_directories(nc_proto PUBLIC $<BUILD_INTERFACE:${NC_GEN_DIR}>)
target_link_libraries(nc_proto PUBLIC PkgConfig::PROTOBUFC)
target_compile_options(nc_proto PRIVATE -w)

# Server-only messages: reflection and descriptor.proto.
add_library(nc_proto_server OBJECT ${NC_REFLECTION_SRCS} ${NC_DESCRIPTOR_SRCS})
target_include_directories(nc_proto_server PUBLIC ${NC_GEN_DIR})
target_link_libraries(nc_proto_server PUBLIC PkgConfig::PROTOBUFC)
target_compile_options(nc_proto_server PRIVATE -w)

# The descriptor set served by reflection: every file our services use.
set(NC_DESCRIPTOR_SET ${NC_GEN_DIR}/novacron.protoset)
set(NC_DESCRIPTOR_C ${NC_GEN_DIR}/novacron_protoset.c)
add_custom_command(
  OUTPUT ${NC_DESCRIPTOR_SET}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${NC_GEN_DIR}
  COMMAND ${PROTOC} -I${NC_PROTO_DIR} -I${NC_GRPC_PROTO_DIR} -I${NC_WKT_DIR}
          --include_imports --include_source_info
          --descriptor_set_out=${NC_DESCRIPTOR_SET}
          ${_api_rel} grpc/health/v1/health.proto
          grpc/reflection/v1/reflection.proto
          grpc/reflection/v1alpha/reflection.proto
  DEPENDS ${NC_API_PROTOS}
  COMMENT "descriptor set for server reflection"
  VERBATIM)
add_custom_command(
  OUTPUT ${NC_DESCRIPTOR_C}
  COMMAND ${CMAKE_COMMAND} -DIN=${NC_DESCRIPTOR_SET} -DOUT=${NC_DESCRIPTOR_C}
          -DSYMBOL=nc_protoset -P ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
  DEPENDS ${NC_DESCRIPTOR_SET} ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
  COMMENT "embedding the descriptor set"
  VERBATIM)
add_library(nc_protoset OBJECT ${NC_DESCRIPTOR_C})
