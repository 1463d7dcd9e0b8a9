"""Server reflection (grpc.reflection.v1 and v1alpha) from Python grpcio: the
service list, FileDescriptorProtos with source comments for every service,
files by name with their dependencies, errors, and a descriptor pool built
only from what the server returned — a client without the .proto files can
describe and call everything."""
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import harness
from harness import Server, stop_and_assert

harness.stubs()
from grpcstubs.reflection.v1 import reflection_pb2 as r1, reflection_pb2_grpc as r1_grpc  # noqa
from grpcstubs.reflection.v1alpha import (reflection_pb2 as r1a,  # noqa: E402
                                          reflection_pb2_grpc as r1a_grpc)

NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
SERVICE_FIELD = 6  # FileDescriptorProto.service
METHOD_FIELD = 2  # ServiceDescriptorProto.method

_srv = None


def setUpModule():
    global _srv
    _srv = Server(name="reflection").start()


def tearDownModule():
    stop_and_assert(_srv)


def comments(fdp):
    """{location path tuple: leading comment} of a FileDescriptorProto."""
    return {tuple(loc.path): loc.leading_comments for loc in fdp.source_code_info.location}


def topo_sorted(files):
    """FileDescriptorProtos ordered so that dependencies come first."""
    by_name = {f.name: f for f in files}
    out, done = [], set()

    def visit(name, stack=()):
        if name in done:
            return
        if name in stack:
            raise AssertionError("import cycle: %s" % " -> ".join(stack + (name,)))
        f = by_name.get(name)
        if f is None:
            raise AssertionError("the server did not return %s" % name)
        for dep in f.dependency:
            visit(dep, stack + (name,))
        done.add(name)
        out.append(f)

    for name in sorted(by_name):
        visit(name)
    return out


class ReflectionCases:
    """Run once per reflection version (the subclasses below)."""
    pb = None  # reflection_pb2 module
    pb_grpc = None
    version = None

    @classmethod
    def setUpClass(cls):
        cls.ch = _srv.channel()
        cls.stub = cls.pb_grpc.ServerReflectionStub(cls.ch)

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()

    def ask(self, *reqs):
        """Sends the requests on one stream; returns the responses."""
        resps = list(self.stub.ServerReflectionInfo(iter(reqs), timeout=10))
        self.assertEqual(len(resps), len(reqs))
        return resps

    def files(self, resp):
        self.assertEqual(resp.WhichOneof("message_response"), "file_descriptor_response",
                         str(resp.error_response))
        out = []
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            f = descriptor_pb2.FileDescriptorProto()
            f.ParseFromString(raw)
            out.append(f)
        self.assertTrue(out)
        return out

    def test_list_services(self):
        req = self.pb.ServerReflectionRequest(list_services="*")
        (resp,) = self.ask(req)
        self.assertEqual(resp.WhichOneof("message_response"), "list_services_response")
        names = [s.name for s in resp.list_services_response.service]
        self.assertEqual(len(names), len(set(names)), names)
        expected = set(harness.local_services())
        self.assertEqual(len(expected), 12)
        self.assertEqual(set(names), expected)
        self.assertEqual(resp.original_request, req)

    def test_file_containing_symbol_every_service(self):
        for name, local in sorted(harness.local_services().items()):
            with self.subTest(service=name):
                (resp,) = self.ask(self.pb.ServerReflectionRequest(file_containing_symbol=name))
                files = self.files(resp)
                pkg, short = name.rsplit(".", 1)
                hits = [(f, i) for f in files for i, s in enumerate(f.service)
                        if f.package == pkg and s.name == short]
                self.assertEqual(len(hits), 1, [f.name for f in files])
                f, index = hits[0]
                self.assertEqual(files[0].name, f.name, "the defining file comes first")
                self.assertEqual(f.name, local.file.name.replace("grpcstubs/", "grpc/"))
                svc = f.service[index]
                self.assertEqual([m.name for m in svc.method], [m.name for m in local.methods])
                for m, lm in zip(svc.method, local.methods):
                    self.assertEqual(m.input_type, "." + lm.input_type.full_name)
                    self.assertEqual(m.output_type, "." + lm.output_type.full_name)
                    self.assertEqual(m.server_streaming, lm.server_streaming, m.name)
                    self.assertEqual(m.client_streaming, lm.client_streaming, m.name)
                self.assertTrue(f.HasField("source_code_info"), f.name)
                if pkg == "novacron.v1":  # every element of the API carries a comment
                    docs = comments(f)
                    self.assertTrue(docs.get((SERVICE_FIELD, index), "").strip(),
                                    "%s has no leading comment" % name)
                    for k, m in enumerate(svc.method):
                        self.assertTrue(
                            docs.get((SERVICE_FIELD, index, METHOD_FIELD, k), "").strip(),
                            "%s.%s has no leading comment" % (name, m.name))

    def test_file_containing_method_and_message_symbols(self):
        for symbol in ("novacron.v1.VmService.GetVm", "novacron.v1.Vm",
                       "novacron.v1.GetVmRequest"):
            with self.subTest(symbol=symbol):
                (resp,) = self.ask(self.pb.ServerReflectionRequest(file_containing_symbol=symbol))
                self.assertEqual(self.files(resp)[0].name, "novacron/v1/vm.proto")

    def test_file_by_filename_with_dependencies(self):
        (resp,) = self.ask(self.pb.ServerReflectionRequest(file_by_filename="novacron/v1/vm.proto"))
        files = self.files(resp)
        self.assertEqual(files[0].name, "novacron/v1/vm.proto")
        self.assertEqual(files[0].package, "novacron.v1")
        self.assertIn("VmService", [s.name for s in files[0].service])
        self.assertTrue(files[0].dependency)
        # the transitive closure of the imports is there (topo_sorted checks)
        ordered = topo_sorted(files)
        names = {f.name for f in ordered}
        self.assertIn("novacron/v1/common.proto", names)
        self.assertIn("google/protobuf/timestamp.proto", names)

    def test_unknown_names_not_found_and_stream_goes_on(self):
        reqs = [self.pb.ServerReflectionRequest(file_containing_symbol="novacron.v1.NoSuchThing"),
                self.pb.ServerReflectionRequest(file_by_filename="novacron/v1/nope.proto"),
                self.pb.ServerReflectionRequest(list_services="")]
        resps = self.ask(*reqs)
        for req, resp in zip(reqs[:2], resps[:2]):
            with self.subTest(request=str(req).strip()):
                self.assertEqual(resp.WhichOneof("message_response"), "error_response")
                self.assertEqual(resp.error_response.error_code, NOT_FOUND)
                self.assertTrue(resp.error_response.error_message)
                self.assertEqual(resp.original_request, req)
        self.assertEqual(resps[2].WhichOneof("message_response"), "list_services_response")

    def test_empty_and_extension_requests(self):
        reqs = [self.pb.ServerReflectionRequest(),
                self.pb.ServerReflectionRequest(all_extension_numbers_of_type="novacron.v1.Vm"),
                self.pb.ServerReflectionRequest(file_containing_extension=self.pb.ExtensionRequest(
                    containing_type="novacron.v1.Vm", extension_number=1000))]
        empty, numbers, ext = self.ask(*reqs)
        self.assertEqual(empty.WhichOneof("message_response"), "error_response")
        self.assertEqual(empty.error_response.error_code, grpc.StatusCode.INVALID_ARGUMENT.value[0])
        self.assertEqual(numbers.WhichOneof("message_response"), "all_extension_numbers_response")
        self.assertEqual(numbers.all_extension_numbers_response.base_type_name, "novacron.v1.Vm")
        self.assertEqual(list(numbers.all_extension_numbers_response.extension_number), [])
        self.assertEqual(ext.WhichOneof("message_response"), "error_response")
        self.assertEqual(ext.error_response.error_code, NOT_FOUND)

    def test_descriptor_pool_from_reflection_only(self):
        services = harness.local_services()
        reqs = [self.pb.ServerReflectionRequest(file_containing_symbol=n) for n in sorted(services)]
        files = {}
        for resp in self.ask(*reqs):
            for f in self.files(resp):
                files.setdefault(f.name, f)
        pool = descriptor_pool.DescriptorPool()
        for f in topo_sorted(files.values()):
            pool.Add(f)
        for name, local in sorted(services.items()):
            sd = pool.FindServiceByName(name)
            self.assertEqual([m.name for m in sd.methods], [m.name for m in local.methods])
            for m in sd.methods:
                for t in (m.input_type, m.output_type):
                    self.assertIs(pool.FindMessageTypeByName(t.full_name), t)
                    # every field's type resolves too, all the way down
                    seen, todo = set(), [t]
                    while todo:
                        d = todo.pop()
                        if d.full_name in seen:
                            continue
                        seen.add(d.full_name)
                        for fd in d.fields:
                            if fd.message_type is not None:
                                todo.append(fd.message_type)
        # and call the server with message classes built from that pool
        factory = message_factory.MessageFactory(pool)
        req_cls = factory.GetPrototype(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest"))
        resp_desc = pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")
        resp_cls = factory.GetPrototype(resp_desc)
        check = self.ch.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=req_cls.SerializeToString,
                                    response_deserializer=resp_cls.FromString)
        resp = check(req_cls(service="novacron.v1.VmService"), timeout=5)
        status = resp_desc.fields_by_name["status"].enum_type.values_by_number[resp.status].name
        self.assertEqual(status, "SERVING")


class ReflectionV1(ReflectionCases, unittest.TestCase):
    pb, pb_grpc, version = r1, r1_grpc, "v1"


class ReflectionV1Alpha(ReflectionCases, unittest.TestCase):
    pb, pb_grpc, version = r1a, r1a_grpc, "v1alpha"


if __name__ == "__main__":
    unittest.main()
