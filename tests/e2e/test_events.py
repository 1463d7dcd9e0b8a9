"""EventService.WatchEvents from Python grpcio against the real server.

The stream's first message is a heartbeat carrying the head; heartbeats
follow the requested interval; bad requests answer INVALID_ARGUMENT naming
the field; callers see only the projects they have a role on (a viewer of
another project and a non-administrator asking for everything are refused
with PERMISSION_DENIED); a resume point beyond the head is OUT_OF_RANGE;
a client that reconnects with the last sequence it saw gets the rest; and
server shutdown ends streams with UNAVAILABLE.

Events are written into the log from outside the server, the way another
replica writes them (psql: sequence under the advisory lock, INSERT,
NOTIFY), so this file does not depend on the services that produce events.
The VM test additionally drives VmService.CreateVm; it is skipped only while
CreateVm answers UNIMPLEMENTED.
"""
import os
import queue
import subprocess
import threading
import time
import unittest

import grpc
from google.protobuf import duration_pb2

import harness
from harness import Server
from identity import admin, grant, ip, login, make_project, make_user, PASSWORD, rid, unique

harness.stubs()
from novacron.v1 import event_pb2 as ep  # noqa: E402
from novacron.v1 import event_pb2_grpc as eg  # noqa: E402
from novacron.v1 import vm_pb2 as vp  # noqa: E402
from novacron.v1 import vm_pb2_grpc as vg  # noqa: E402

C = grpc.StatusCode
E = ep.Event
HB = E.TYPE_HEARTBEAT
SEQ_LOCK = 5639462717580276851  # "NCevents": the sequence lock of server/core/events.c
TIMEOUT = 20


# ---------------------------------------------------------------- the log


def psql(url, sql, **variables):
    """Runs a psql script (variables as -v, interpolated with :'name')."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    cmd = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url]
    for k, v in variables.items():
        cmd += ["-v", "%s=%s" % (k, v)]
    res = subprocess.run(cmd, input=sql, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, timeout=30)
    if res.returncode != 0:
        raise AssertionError("psql failed: " + res.stderr)
    return res.stdout


APPEND_SQL = """BEGIN;
SELECT pg_advisory_xact_lock(%d);
WITH ins AS (
  INSERT INTO events (seq, type, resource, resource_type, project, target, event)
  VALUES (nextval('events_seq'), :type, :'res', :'rtype', :'proj', :'target',
          decode(:'hex', 'hex'))
  RETURNING seq)
SELECT 'seq=' || seq, pg_notify('nc_events', seq::text) FROM ins;
COMMIT;
""" % SEQ_LOCK


def append(url, etype, resource, rtype, project="", target="", message="from another replica"):
    """Appends one event the way a replica does; returns its sequence."""
    ev = E(type=etype, resource=resource, resource_type=rtype, project=project, message=message)
    out = psql(url, APPEND_SQL, type=int(etype), res=resource, rtype=rtype, proj=project,
               target=target, hex=ev.SerializeToString().hex())
    for line in out.splitlines():
        if line.startswith("seq="):
            return int(line[4:].split("|")[0])
    raise AssertionError("no sequence in psql output: %r" % out)


def head(url):
    return int(psql(url, "SELECT coalesce(max(seq), 0) FROM events;").strip())


# ---------------------------------------------------------------- streams


class Watch:
    """A WatchEvents stream read by a background thread.

        w = Watch(channel, token, ep.WatchEventsRequest(parent="projects/p"))
        w.next()          # the next Event (None once the stream ended)
        w.error           # the grpc.RpcError that ended it, if any"""

    def __init__(self, channel, token, request, timeout=None):
        self.call = eg.EventServiceStub(channel).WatchEvents(
            request, metadata=[("authorization", "Bearer " + token)], timeout=timeout)
        self.q = queue.Queue()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for resp in self.call:
                self.q.put((time.monotonic(), resp.event))
        except grpc.RpcError as e:
            self.error = e
        self.q.put((time.monotonic(), None))

    def next_at(self, timeout=TIMEOUT):
        """(arrival time, Event or None at the end)."""
        return self.q.get(timeout=timeout)

    def next(self, timeout=TIMEOUT):
        return self.next_at(timeout)[1]

    def events(self, count, timeout=TIMEOUT):
        """The next `count` events that are not heartbeats."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            ev = self.next(max(0.1, deadline - time.monotonic()))
            if ev is None:
                raise AssertionError("stream ended after %d events: %s" % (len(out), self.error))
            if ev.type != HB:
                out.append(ev)
        return out

    def quiet(self, seconds):
        """The events other than heartbeats that arrive within `seconds`."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            try:
                ev = self.next(max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return out
            if ev is None or time.monotonic() > deadline:
                return out
            if ev.type != HB:
                out.append(ev)

    def ended(self, timeout=TIMEOUT):
        """Reads to the end; returns the RpcError that ended the stream."""
        deadline = time.monotonic() + timeout
        while self.next(max(0.1, deadline - time.monotonic())) is not None:
            pass
        return self.error

    def cancel(self):
        self.call.cancel()
        self.thread.join(5)


def first_error(channel, token, request):
    """The status a stream ends with before or instead of its first message
    (raises when a message arrives)."""
    w = Watch(channel, token, request, timeout=TIMEOUT)
    ev = w.next()
    if ev is not None:
        w.cancel()
        raise AssertionError("expected an error, got a message: %s" % ev)
    return w.error


# ---------------------------------------------------------------- tests


class WatchEvents(unittest.TestCase):
    """One server on a database of its own (so the log holds only what these
    tests write), an administrator, a viewer of project A and a user without
    roles."""

    @classmethod
    def setUpClass(cls):
        cls.url = harness.create_database("ev")
        cls.srv = Server(database_url=cls.url, name="events").start()
        cls.ch = cls.srv.channel()
        cls.api = admin(cls.srv, cls.ch)
        cls.admin_token = cls.api.token
        cls.a = make_project(cls.api, "ea")
        cls.b = make_project(cls.api, "eb")
        viewer = make_user(cls.api, "ev")
        grant(cls.api, cls.a, viewer, ip.ROLE_VIEWER)
        cls.viewer_token = login(cls.ch, viewer, PASSWORD)[0].token
        nobody = make_user(cls.api, "en")
        cls.nobody_token = login(cls.ch, nobody, PASSWORD)[0].token

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        harness.stop_and_assert(cls.srv)

    def watch(self, token=None, **fields):
        return Watch(self.ch, token or self.admin_token, ep.WatchEventsRequest(**fields))

    def refused(self, token, **fields):
        return first_error(self.ch, token, ep.WatchEventsRequest(**fields))

    def test_first_message_is_a_heartbeat_with_the_head(self):
        res = "projects/%s/vms/%s" % (self.a, unique("hb"))
        # the head a stream starts from is what this server has fanned out
        # (the newest sequence it can vouch for); an event written by
        # another replica counts once it arrived here
        probe = self.watch(parent="", resources=[res])
        self.assertEqual(probe.next().type, HB)
        before = append(self.url, E.TYPE_VM_CREATED, res, "novacron.v1.Vm", "projects/" + self.a)
        self.assertEqual(probe.events(1)[0].sequence, before)
        probe.cancel()
        for parent, token in (("", self.admin_token), ("projects/-", self.viewer_token),
                              ("projects/" + self.a, self.viewer_token),
                              ("projects/-", self.nobody_token)):
            with self.subTest(parent=parent):
                w = self.watch(token, parent=parent)
                first = w.next()
                self.assertEqual(first.type, HB)
                self.assertGreaterEqual(first.sequence, before)
                self.assertLessEqual(first.sequence, head(self.url))
                self.assertEqual(first.resource, "")
                self.assertFalse(first.HasField("vm"))
                self.assertGreater(first.event_time.seconds, 1600000000)
                # live events follow, with sequences above the head
                seq = append(self.url, E.TYPE_VM_UPDATED, res, "novacron.v1.Vm",
                             "projects/" + self.a)
                if token is self.nobody_token:
                    self.assertEqual(w.quiet(1.0), [])
                else:
                    ev = w.events(1)[0]
                    self.assertEqual((ev.sequence, ev.type, ev.resource), (seq, E.TYPE_VM_UPDATED,
                                                                           res))
                    self.assertGreater(ev.sequence, first.sequence)
                w.cancel()

    def test_heartbeats_follow_the_interval(self):
        w = self.watch(parent="projects/" + self.b,
                       heartbeat_interval=duration_pb2.Duration(seconds=5))
        t0, first = w.next_at()
        self.assertEqual(first.type, HB)
        t1, second = w.next_at(timeout=10)
        self.assertEqual(second.type, HB)
        self.assertGreaterEqual(second.sequence, first.sequence)
        self.assertGreater(t1 - t0, 4.0)
        self.assertLess(t1 - t0, 7.5)
        w.cancel()

    def test_invalid_arguments_name_the_field(self):
        pa = "projects/" + self.a
        cases = [
            ("types", dict(parent=pa, types=[E.TYPE_UNSPECIFIED])),
            ("types", dict(parent=pa, types=[E.TYPE_VM_CREATED, 999])),
            ("resource_types", dict(parent=pa, resource_types=["novacron.v1.Nope"])),
            ("resource_types", dict(parent=pa, resource_types=["Vm"])),
            ("resources", dict(parent=pa, resources=["%s/vms/v%d" % (pa, i) for i in range(101)])),
            ("resources", dict(parent=pa, resources=["projects/%s/vms/x" % self.b])),
            ("resources", dict(parent=pa, resources=[pa + "/vms/"])),
            ("resources", dict(parent="projects/-", resources=["hosts/h1"])),
            ("after_sequence", dict(parent=pa, after_sequence=-1)),
            ("heartbeat_interval", dict(parent=pa,
                                        heartbeat_interval=duration_pb2.Duration(seconds=4))),
            ("heartbeat_interval", dict(parent=pa,
                                        heartbeat_interval=duration_pb2.Duration(seconds=301))),
            ("heartbeat_interval", dict(parent=pa,
                                        heartbeat_interval=duration_pb2.Duration(nanos=-1))),
            ("parent", dict(parent="projects/Not_An_Id")),
            ("parent", dict(parent="projects/%s/vms/x" % self.a)),
        ]
        for field, req in cases:
            with self.subTest(field=field, req=str(req)[:80]):
                err = self.refused(self.admin_token, **req)
                self.assertEqual(err.code(), C.INVALID_ARGUMENT, err.details())
                self.assertIn(field, err.details())
        # the limits themselves are fine
        for req in (dict(parent=pa, resources=["%s/vms/v%d" % (pa, i) for i in range(100)]),
                    dict(parent=pa, heartbeat_interval=duration_pb2.Duration(seconds=300)),
                    dict(parent=pa, types=[E.TYPE_HEARTBEAT, E.TYPE_VM_CREATED],
                         resource_types=["novacron.v1.Vm", "novacron.v1.Operation",
                                         "novacron.v1.Host", "novacron.v1.VmSnapshot",
                                         "novacron.v1.Volume", "novacron.v1.Network",
                                         "novacron.v1.Pool", "novacron.v1.Backup"])):
            w = self.watch(**req)
            self.assertEqual(w.next().type, HB)
            w.cancel()

    def test_permission_denied(self):
        cases = [
            ("viewer of A on B", self.viewer_token, dict(parent="projects/" + self.b)),
            ("viewer, empty parent", self.viewer_token, dict(parent="")),
            ("viewer, projects/- naming B", self.viewer_token,
             dict(parent="projects/-", resources=["projects/%s/vms/x" % self.b])),
            ("no roles on A", self.nobody_token, dict(parent="projects/" + self.a)),
            ("no roles, empty parent", self.nobody_token, dict(parent="")),
        ]
        for label, token, req in cases:
            with self.subTest(label):
                err = self.refused(token, **req)
                self.assertEqual(err.code(), C.PERMISSION_DENIED, err.details())

    def test_after_sequence_beyond_the_head_is_out_of_range(self):
        err = self.refused(self.admin_token, parent="", after_sequence=head(self.url) + 10**9)
        self.assertEqual(err.code(), C.OUT_OF_RANGE, err.details())
        self.assertIn("after_sequence", err.details())

    def test_projects_filters_and_resume(self):
        pa, pb = "projects/" + self.a, "projects/" + self.b
        vm = "%s/vms/%s" % (pa, unique("web"))
        host = "hosts/" + unique("h")
        mine = self.watch(self.viewer_token, parent="projects/-")
        only_vm = self.watch(self.viewer_token, parent=pa, resources=[vm])
        everything = self.watch(parent="", resources=[vm, host, pb])
        vm_types = self.watch(parent="projects/-", types=[E.TYPE_VM_CREATED])
        for w in (mine, only_vm, everything, vm_types):
            self.assertEqual(w.next().type, HB)
        s1 = append(self.url, E.TYPE_VM_CREATED, vm, "novacron.v1.Vm", pa)
        s2 = append(self.url, E.TYPE_VM_CREATED, pb + "/vms/other", "novacron.v1.Vm", pb)
        s3 = append(self.url, E.TYPE_HOST_STATE_CHANGED, host, "novacron.v1.Host")
        s4 = append(self.url, E.TYPE_OPERATION_DONE, pa + "/operations/op1",
                    "novacron.v1.Operation", pa, target=vm)
        s5 = append(self.url, E.TYPE_VM_UPDATED, pa + "/vms/unrelated", "novacron.v1.Vm", pa)
        self.assertEqual([e.sequence for e in mine.events(3)], [s1, s4, s5])
        self.assertEqual([e.sequence for e in only_vm.events(2)], [s1, s4])
        self.assertEqual([e.sequence for e in everything.events(4)], [s1, s2, s3, s4])
        self.assertEqual([e.sequence for e in vm_types.events(2)], [s1, s2])
        for w in (mine, only_vm, everything, vm_types):
            self.assertEqual(w.quiet(0.5), [], "nothing else arrives")
            w.cancel()
        # the viewer went away after s1; it resumes and gets the rest, then
        # follows live again
        back = self.watch(self.viewer_token, parent="projects/-", after_sequence=s1)
        hb = back.next()
        self.assertEqual(hb.type, HB)
        self.assertGreaterEqual(hb.sequence, s5)
        got = back.events(2)
        self.assertEqual([(e.sequence, e.resource) for e in got],
                         [(s4, pa + "/operations/op1"), (s5, pa + "/vms/unrelated")])
        self.assertEqual(got[0].project, pa)
        self.assertEqual(got[0].message, "from another replica")
        s6 = append(self.url, E.TYPE_VM_DELETED, vm, "novacron.v1.Vm", pa)
        self.assertEqual(back.events(1)[0].sequence, s6)
        back.cancel()


class Shutdown(unittest.TestCase):
    def test_shutdown_ends_streams_with_unavailable(self):
        srv = Server(name="events-stop").start()
        try:
            with srv.channel() as ch:
                token = admin(srv, ch).token
                w = Watch(ch, token, ep.WatchEventsRequest(parent=""))
                self.assertEqual(w.next().type, HB)
                v = Watch(ch, token, ep.WatchEventsRequest(parent="projects/default"))
                self.assertEqual(v.next().type, HB)
                harness.stop_and_assert(srv)
                for s in (w, v):
                    err = s.ended()
                    self.assertIsNotNone(err)
                    self.assertEqual(err.code(), C.UNAVAILABLE, err.details())
        finally:
            srv.kill()


class VmEvents(unittest.TestCase):
    """Events of a real VM: created in project `default` with 1 vCPU and
    128 MiB on the built-in test hypervisor."""

    def test_vm_lifecycle_events_and_resume(self):
        # a database of its own: the VM stays, and other tests list `default`
        srv = Server(database_url=harness.create_database("evvm"), name="events-vm").start()
        try:
            with srv.channel() as ch:
                api = admin(srv, ch)
                md = [("authorization", "Bearer " + api.token)]
                vm_id = unique("evm")
                name = "projects/default/vms/" + vm_id
                w = Watch(ch, api.token, ep.WatchEventsRequest(parent="projects/default",
                                                               resources=[name]))
                self.assertEqual(w.next().type, HB)
                created = vg.VmServiceStub(ch).CreateVm(vp.CreateVmRequest(
                    parent="projects/default", vm_id=vm_id,
                    vm=vp.Vm(vcpus=1, memory_mib=128), request_id=rid()),
                    metadata=md, timeout=TIMEOUT)
                op = created.operation.name
                seen = []
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    ev = w.next(max(0.1, deadline - time.monotonic()))
                    self.assertIsNotNone(ev, "stream ended: %s" % w.error)
                    if ev.type == HB:
                        continue
                    seen.append(ev)
                    if ev.type == E.TYPE_OPERATION_DONE and ev.resource == op:
                        break
                types = [e.type for e in seen]
                self.assertIn(E.TYPE_VM_CREATED, types)
                self.assertIn(E.TYPE_OPERATION_CREATED, types)
                self.assertIn(E.TYPE_OPERATION_DONE, types)
                self.assertIn(E.TYPE_VM_STATE_CHANGED, types)
                seqs = [e.sequence for e in seen]
                self.assertEqual(seqs, sorted(set(seqs)), "strictly increasing")
                vm_created = next(e for e in seen if e.type == E.TYPE_VM_CREATED)
                self.assertEqual(vm_created.resource, name)
                self.assertEqual(vm_created.resource_type, "novacron.v1.Vm")
                self.assertEqual(vm_created.project, "projects/default")
                self.assertEqual(vm_created.vm.name, name)
                self.assertEqual(vm_created.principal, "users/admin")
                for e in seen:
                    if e.resource_type == "novacron.v1.Operation":
                        self.assertEqual(e.operation.target, name)
                done = next(e for e in seen if e.type == E.TYPE_OPERATION_DONE)
                self.assertTrue(done.operation.done)
                w.cancel()
                # reconnect after the first event: the rest comes again, in order
                r = Watch(ch, api.token, ep.WatchEventsRequest(
                    parent="projects/default", resources=[name], after_sequence=seen[0].sequence))
                self.assertEqual(r.next().type, HB)
                again = r.events(len(seen) - 1)
                self.assertEqual([(e.sequence, e.type) for e in again],
                                 [(e.sequence, e.type) for e in seen[1:]])
                r.cancel()
            harness.stop_and_assert(srv)
        finally:
            srv.kill()


if __name__ == "__main__":
    unittest.main()
