"""The RPC runtime under worker-pool handlers of every cardinality, using
tests/integration/runtime_server.c (the product server has no worker
handlers yet). These are the guarantees later services build on."""
import os
import subprocess
import threading
import time
import unittest

import grpc

import harness
from harness import BINARY_DIR, tmpdir

harness.stubs()
from grpcstubs.reflection.v1 import reflection_pb2 as r1, reflection_pb2_grpc as r1_grpc  # noqa
from grpcstubs.reflection.v1alpha import reflection_pb2 as r1a  # noqa: E402
from novacron.v1 import event_pb2, event_pb2_grpc, vm_pb2, vm_pb2_grpc  # noqa: E402

RUNTIME_SERVER = os.path.join(BINARY_DIR, "tests", "runtime_server")


class RuntimeServer:
    def __init__(self, workers=4, queue=64, grace_ms=2000, stream_queue=16):
        self.dir = tmpdir("runtime-")
        self.ready = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [RUNTIME_SERVER, self.ready, str(workers), str(queue), str(grace_ms),
                 str(stream_queue)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("runtime_server did not start:\n" + self.log())
            time.sleep(0.02)
        with open(self.ready) as f:
            self.addr = f.read().strip()
        self.channel = grpc.insecure_channel(self.addr, options=harness.CHANNEL_OPTIONS)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=15):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(timeout)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Runtime(unittest.TestCase):
    def setUp(self):
        self.srv = None

    def start(self, **kw):
        self.srv = RuntimeServer(**kw)
        self.vm = vm_pb2_grpc.VmServiceStub(self.srv.channel)
        self.events = event_pb2_grpc.EventServiceStub(self.srv.channel)
        return self.srv

    def tearDown(self):
        if self.srv:
            try:
                rc = self.srv.stop()
                self.assertEqual(rc, 0, self.srv.log()[-3000:])
                self.assertIn("clean exit", self.srv.log())
            finally:
                self.srv.kill()

    def wait_for_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in self.srv.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(text, self.srv.log())

    def watch(self, parent, timeout=20):
        return self.events.WatchEvents(event_pb2.WatchEventsRequest(parent=parent), timeout=timeout)

    def test_stream_longer_than_its_queue_is_delivered_whole(self):
        # a worker handler sending 3000 messages through a 16-message queue
        # waits for room instead of being cut off
        self.start(stream_queue=16)
        seqs = [r.event.sequence for r in self.watch("3000")]
        self.assertEqual(seqs, list(range(1, 3001)))

    def test_status_follows_every_queued_message(self):
        self.start(stream_queue=64)
        got = []
        with self.assertRaises(grpc.RpcError) as ctx:
            for r in self.watch("40/code:9"):
                got.append(r.event.sequence)
        self.assertEqual(got, list(range(1, 41)))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)

    def test_invalid_status_codes_become_internal(self):
        self.start()
        for what in ("code:-5", "code:99"):
            with self.assertRaises(grpc.RpcError) as ctx:
                list(self.watch(what))
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.INTERNAL, what)
            with self.assertRaises(grpc.RpcError) as ctx:
                self.vm.GetVm(vm_pb2.GetVmRequest(name=what), timeout=5)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.INTERNAL, what)

    def test_handler_sees_deadline_and_client_gets_deadline_exceeded(self):
        self.start()
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as ctx:
            self.vm.GetVm(vm_pb2.GetVmRequest(name="poll:5000"), timeout=0.3)
        # The client's own timer normally reports DEADLINE_EXCEEDED; on a
        # loaded machine the server's expiry (RST_STREAM) can arrive first,
        # which gRPC clients report as CANCELLED. Both mean the deadline held.
        self.assertIn(ctx.exception.code(),
                      (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED))
        self.assertLess(time.monotonic() - t0, 4.0)  # not the handler's 5 s
        self.wait_for_log("handler saw cancellation")

    def test_client_cancellation_reaches_the_handler(self):
        self.start()
        fut = self.vm.GetVm.future(vm_pb2.GetVmRequest(name="poll:5000"), timeout=10)
        time.sleep(0.3)
        fut.cancel()
        self.wait_for_log("handler saw cancellation")

    def test_full_worker_queue_answers_unavailable_at_once(self):
        self.start(workers=1, queue=1)
        self.vm.GetVm(vm_pb2.GetVmRequest(name="x"), timeout=10)  # connected
        busy = [self.vm.GetVm.future(vm_pb2.GetVmRequest(name="sleep:4000"), timeout=30)]
        self.wait_for_log("handler sleeping")  # the only worker is taken
        busy.append(self.vm.GetVm.future(vm_pb2.GetVmRequest(name="sleep:10"), timeout=30))
        time.sleep(1.0)  # ... and the one queue slot
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as ctx:
            self.vm.GetVm(vm_pb2.GetVmRequest(name="x"), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("overloaded", ctx.exception.details())
        self.assertLess(time.monotonic() - t0, 2.0)  # at once, not after the 4 s sleep
        for f in busy:
            self.assertTrue(f.result().HasField("vm"))

    def test_bidi_answers_each_request_and_ends_ok(self):
        self.start()
        stub = r1_grpc.ServerReflectionStub(self.srv.channel)
        reqs = [r1.ServerReflectionRequest(host="h%d" % i, list_services="") for i in range(300)]
        got = [r.valid_host for r in stub.ServerReflectionInfo(iter(reqs), timeout=20)]
        self.assertEqual(got, ["h%d" % i for i in range(300)])
        # a client that sends everything before reading anything is held back
        # by flow control (the queue holds 16 replies), never cut off
        responses = stub.ServerReflectionInfo(iter(reqs), timeout=20)
        time.sleep(1.0)
        got = [r.valid_host for r in responses]
        self.assertEqual(got, ["h%d" % i for i in range(300)])
        # an error status ends the stream after the answers before it
        reqs = [r1.ServerReflectionRequest(host=h) for h in ("a", "b", "code:5", "c")]
        got = []
        with self.assertRaises(grpc.RpcError) as ctx:
            for r in stub.ServerReflectionInfo(iter(reqs), timeout=20):
                got.append(r.valid_host)
        self.assertEqual(got, ["a", "b"])
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)

    @unittest.skipIf(os.environ.get("NC_SANITIZE"),
                     "AddressSanitizer's quarantine holds freed memory; RSS says nothing")
    def test_bidi_stream_memory_stays_bounded(self):
        # 400 requests of 256 KiB on one stream: the per-call arena is reset
        # between requests, so the server's memory does not grow with them
        self.start()
        stub = r1_grpc.ServerReflectionStub(self.srv.channel)
        big = "x" * (256 << 10)

        def rss_kib():
            with open("/proc/%d/status" % self.srv.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        before = rss_kib()
        n = 0
        for _ in stub.ServerReflectionInfo(
                (r1.ServerReflectionRequest(host=big) for _ in range(400)), timeout=60):
            n += 1
        self.assertEqual(n, 400)
        growth_mib = (rss_kib() - before) / 1024
        self.assertLess(growth_mib, 60, "server grew %.0f MiB over 100 MiB of requests" % growth_mib)

    def test_client_streaming_counts_and_replies_once(self):
        self.start()
        call = self.srv.channel.stream_unary(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=r1a.ServerReflectionRequest.SerializeToString,
            response_deserializer=r1a.ServerReflectionResponse.FromString)
        resp = call(iter([r1a.ServerReflectionRequest(host="x")] * 25), timeout=10)
        self.assertEqual(resp.valid_host, "25")

    def test_shutdown_cancels_handlers_that_outlive_the_grace_period(self):
        self.start(grace_ms=500)
        fut = self.vm.GetVm.future(vm_pb2.GetVmRequest(name="poll:20000"), timeout=30)
        time.sleep(0.3)
        t0 = time.monotonic()
        self.srv.proc.terminate()
        with self.assertRaises(grpc.RpcError):
            fut.result()
        rc = self.srv.proc.wait(10)
        self.assertEqual(rc, 0, self.srv.log()[-3000:])
        self.assertLess(time.monotonic() - t0, 10.0)  # not the handler's 20 s
        self.assertIn("handler saw cancellation", self.srv.log())
        self.assertIn("cancelling remaining calls", self.srv.log())

    def test_concurrent_mixed_load(self):
        self.start(workers=8, queue=1024)
        errors = []

        def worker(i):
            try:
                for j in range(30):
                    if j % 3 == 0:
                        n = sum(1 for _ in self.watch("50"))
                        assert n == 50, n
                    else:
                        self.vm.GetVm(vm_pb2.GetVmRequest(name="ok"), timeout=10)
            except Exception as e:  # noqa: BLE001 - collected and reported
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
