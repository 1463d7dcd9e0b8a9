"""storage.py - the API side of bench/storage.sh: Python grpcio through the
e2e tests' client (tests/e2e/compute.py's Client) against a running server.
Every latency is timed from the call until WaitOperation reports the
Operation done (for the calls that return one). Modes, all after
ADDR CA PASSWORD:

  test N VOLUMES PAGES POOL_DIR   on hosts/default (libvirt's test driver):
                                  a dir pool; N CreateVolume (1 MiB qcow2);
                                  N CreateNetwork (isolated, a /24 each);
                                  N AddReservation and N ListLeases on one
                                  more network; then volumes up to VOLUMES in
                                  all (16 client threads) and PAGES
                                  ListVolumes calls of 100 walking the pages
  qemu-setup POOL_ID POOL_DIR     registers qemu:///system as hosts/qemu and
                                  creates the dir pool POOL_ID in POOL_DIR
  qemu-volumes POOL_ID TAG N SIZE N CreateVolume (qcow2, SIZE bytes) in it,
                                  then deletes them (not timed)
  qemu-attach POOL_ID TAG N SIZE PER_VM SETTLE_S
                                  N AttachVolume of a fresh volume (made
                                  before, not timed) to a running diskless VM
                                  (1 vCPU, 128 MiB), a new VM every PER_VM
                                  disks, each left SETTLE_S seconds after its
                                  start (its firmware keeps a CPU busy for
                                  the first ~3 s); then the VMs are deleted
                                  with their volumes (not timed)
  qemu-networks TAG N NET_BASE    N CreateNetwork (isolated, NET_BASE.i.0/24,
                                  DHCP .100-.200) on hosts/qemu; then deleted
  qemu-images POOL_ID TAG N SIZE_MIB DIR PORT
                                  N CreateVolume importing a qcow2 image of
                                  SIZE_MIB (3/4 written, made in DIR) from its
                                  host path, N downloading it from an HTTP
                                  server on 127.0.0.1:PORT in this process;
                                  N CreateVm without and N with user_data
                                  (config drive into pool POOL_ID + "s", the
                                  server's --default-pool, made in DIR);
                                  everything deleted (not timed)
  qemu-teardown POOL_ID           deletes the pool with its directory
  summary API_SAMPLES RAW_SAMPLES the qemu figures of all rounds together,
                                  API against raw (no server needed)

TAG tells the resource ids of one round from another's. Prints
`<what> n=.. mean_ms=.. p50_ms=.. p99_ms=.. max_ms=..` lines, like
bench/compute.py. With STORAGE_BENCH_SAMPLES=FILE every timed call is also
appended to FILE as `<key> <i> <ms>` (key: test.CreateVolume, qemu.AttachVolume,
...); bench/raw_storage.c prints `raw <what> op=<i> ms=<ms>`."""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# tests/e2e first: its compute.py, not bench/compute.py
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import grpc  # noqa: E402

import compute  # noqa: E402
import harness  # noqa: E402
from compute import hp, np_, rid, sp, vp  # noqa: E402
from identity import login  # noqa: E402

MIB = 1 << 20
PROJECT = "default"
PARENT = "projects/" + PROJECT
QCOW2 = sp.Volume.FORMAT_QCOW2
ISOLATED = np_.Network.MODE_ISOLATED


def stats(what, xs, key=None):
    out = os.environ.get("STORAGE_BENCH_SAMPLES")
    if out and key:
        with open(out, "a") as f:
            f.writelines("%s %d %.3f\n" % (key, i, x) for i, x in enumerate(xs))
    xs = sorted(xs)
    n = len(xs)
    print("%s n=%d mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f" % (
        what, n, sum(xs) / n, xs[n // 2], xs[min(n - 1, n * 99 // 100)], xs[-1]), flush=True)


def client(addr, ca, password):
    ch = grpc.secure_channel(addr, grpc.ssl_channel_credentials(open(ca, "rb").read()),
                             options=harness.CHANNEL_OPTIONS)
    api = login(ch, "admin", password)[0]
    return compute.Client(ch, api.token)


def timed(cl, call):
    """ms from the call until its Operation is done; fails on an error."""
    t0 = time.monotonic()
    cl.done(call().operation, timeout=300)
    return (time.monotonic() - t0) * 1000


def create_pool(cl, host, pool_id, path):
    return cl.done(cl.storage.CreatePool(sp.CreatePoolRequest(
        parent="hosts/" + host, pool_id=pool_id,
        pool=sp.Pool(type=sp.Pool.TYPE_DIR, target_path=path), request_id=rid())).operation,
        timeout=120)


def volume_req(pool, vol_id, size):
    return sp.CreateVolumeRequest(parent=PARENT, volume_id=vol_id, request_id=rid(),
                                  volume=sp.Volume(pool=pool, size_bytes=size, format=QCOW2))


def network_req(host, net_id, cidr_base, dhcp=True):
    """An isolated network on cidr_base.0/24 (or a given CIDR)."""
    cidr = cidr_base if "/" in cidr_base else cidr_base + ".0/24"
    start, end = ("", "")
    if dhcp:
        net = cidr.split("/")[0].rsplit(".", 1)[0]
        start, end = net + ".100", net + ".200"
    return np_.CreateNetworkRequest(
        parent=PARENT, network_id=net_id, request_id=rid(),
        network=np_.Network(host="hosts/" + host, mode=ISOLATED, ipv4_cidr=cidr,
                            dhcp_start=start, dhcp_end=end))


def create_many(cl, make, ids, threads=16):
    """Calls make(id) for every id from `threads` threads without waiting,
    then waits for all the Operations; returns the rate per second."""
    t0 = time.monotonic()
    todo, pending, lock = list(ids), [], threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            o = make(i).operation
            with lock:
                pending.append(o)
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for o in pending:
        cl.done(o, timeout=300)
    return len(pending) / (time.monotonic() - t0) if pending else 0


# ---------------------------------------------------------------- test driver

def test_driver(cl, n, volumes, pages, pool_dir):
    pool = create_pool(cl, "default", "stbench", pool_dir).name

    xs = [timed(cl, lambda i=i: cl.storage.CreateVolume(
        volume_req(pool, "lat-%05d" % i, MIB))) for i in range(n)]
    stats("CreateVolume(test, qcow2 1 MiB)", xs, "test.CreateVolume")

    xs = [timed(cl, lambda i=i: cl.net.CreateNetwork(network_req(
        "default", "stn-%04d" % i, "10.%d.%d" % (100 + i // 256, i % 256)))) for i in range(n)]
    stats("CreateNetwork(test, isolated /24)", xs, "test.CreateNetwork")

    # reservations and leases on one network with room for them all
    net = cl.done(cl.net.CreateNetwork(np_.CreateNetworkRequest(
        parent=PARENT, network_id="stn-res", request_id=rid(),
        network=np_.Network(host="hosts/default", mode=ISOLATED, ipv4_cidr="10.99.0.0/16",
                            dhcp_start="10.99.255.1", dhcp_end="10.99.255.200"))).operation)
    xs = []
    for i in range(n):
        r = np_.Network.Reservation(mac="52:54:00:b5:%02x:%02x" % (i >> 8 & 255, i & 255),
                                    ip="10.99.%d.%d" % (i // 250, i % 250 + 2))
        xs.append(timed(cl, lambda r=r: cl.net.AddReservation(np_.AddReservationRequest(
            name=net.name, reservation=r, request_id=rid()))))
    stats("AddReservation(test)", xs, "test.AddReservation")
    xs = []
    for _ in range(n):
        t0 = time.monotonic()
        cl.net.ListLeases(np_.ListLeasesRequest(parent=net.name))
        xs.append((time.monotonic() - t0) * 1000)
    stats("ListLeases(test, %d reservations)" % n, xs, "test.ListLeases")

    have = cl.storage.ListVolumes(sp.ListVolumesRequest(parent=PARENT, page_size=1)).total_size
    rate = create_many(cl, lambda i: cl.storage.CreateVolume(
        volume_req(pool, "b%05d" % i, MIB)), range(have, volumes))
    if rate:
        print("created %d volumes through the API at %.0f/s (16 client threads)" % (
            volumes - have, rate), flush=True)
    xs, token = [], ""
    for _ in range(pages):
        t0 = time.monotonic()
        r = cl.storage.ListVolumes(sp.ListVolumesRequest(parent=PARENT, page_size=100,
                                                         page_token=token))
        xs.append((time.monotonic() - t0) * 1000)
        assert len(r.volumes) == 100 or not r.next_page_token, len(r.volumes)
        token = r.next_page_token
    stats("ListVolumes(page_size=100, total=%d)" % r.total_size, xs, "test.ListVolumes")


# ---------------------------------------------------------------- qemu

def qemu_setup(cl, pool_id, pool_dir):
    if not any(h.name == "hosts/qemu" for h in cl.host.ListHosts(hp.ListHostsRequest()).hosts):
        compute.register_host(cl, "qemu", "qemu:///system")
    p = create_pool(cl, "qemu", pool_id, pool_dir)
    print("pool %s: %s, %.1f GiB free" % (p.name, sp.Pool.State.Name(p.state),
                                          p.available_bytes / (1 << 30)), flush=True)


def qemu_volumes(cl, pool_id, tag, n, size):
    pool = "hosts/qemu/pools/" + pool_id
    names = []
    xs = []
    for i in range(n):
        vid = "qv-%s-%04d" % (tag, i)
        xs.append(timed(cl, lambda vid=vid: cl.storage.CreateVolume(volume_req(pool, vid, size))))
        names.append("%s/volumes/%s" % (PARENT, vid))
    stats("CreateVolume(qemu, qcow2 %d MiB)" % (size // MIB), xs, "qemu.CreateVolume")
    for name in names:
        cl.done(cl.storage.DeleteVolume(sp.DeleteVolumeRequest(name=name, request_id=rid()))
                .operation, timeout=120)


def qemu_attach(cl, pool_id, tag, n, size, per_vm, settle):
    pool = "hosts/qemu/pools/" + pool_id
    vms, xs = [], []
    for i in range(n):
        if i % per_vm == 0:
            vm = cl.done(cl.vm.CreateVm(vp.CreateVmRequest(
                parent=PARENT, vm_id="qa-%s-%03d" % (tag, i // per_vm), start=True,
                request_id=rid(),
                vm=vp.Vm(vcpus=1, memory_mib=128,
                         placement=vp.VmPlacement(host="hosts/qemu")))).operation, timeout=300)
            assert vm.state == vp.Vm.STATE_RUNNING, vm.state
            vms.append(vm.name)
            time.sleep(settle)
        vol = cl.done(cl.storage.CreateVolume(volume_req(pool, "qa-%s-%04d" % (tag, i), size))
                      .operation, timeout=120)
        xs.append(timed(cl, lambda vm=vms[-1], vol=vol.name: cl.vm.AttachVolume(
            vp.AttachVolumeRequest(name=vm, disk=vp.VmDisk(volume=vol), request_id=rid()))))
    stats("AttachVolume(qemu, hot-plug virtio)", xs, "qemu.AttachVolume")
    got = cl.vm.GetVm(vp.GetVmRequest(name=vms[0])).vm
    print("first VM: %s, disks %s" % (vp.Vm.State.Name(got.state),
                                      " ".join(d.target_device for d in got.disks)), flush=True)
    for name in vms:
        cl.done(cl.vm.DeleteVm(vp.DeleteVmRequest(name=name, force=True, delete_volumes=True,
                                                  request_id=rid())).operation, timeout=300)


def qemu_networks(cl, tag, n, base):
    names, xs = [], []
    for i in range(n):
        nid = "qn-%s-%03d" % (tag, i)
        for attempt in range(20):
            t0 = time.monotonic()
            o = cl.wait(cl.net.CreateNetwork(network_req("qemu", nid, "%s.%d" % (base, i)))
                        .operation, timeout=300)
            ms = (time.monotonic() - t0) * 1000
            if o.state == o.STATE_SUCCEEDED:
                break
            # NovaCron numbers its bridges ncbr<n> from a database sequence
            # and does not look at the host's interfaces: a bridge left by
            # something else (e.g. a crashed libvirtd) fails the creation;
            # the next attempt gets the next number. Not timed.
            if "already in use" not in o.error.message or attempt == 19:
                raise SystemExit("CreateNetwork failed: " + o.error.message)
            print("skipped (not timed): %s" % o.error.message, flush=True)
        xs.append(ms)
        names.append("%s/networks/%s" % (PARENT, nid))
    stats("CreateNetwork(qemu, isolated /24 + DHCP)", xs, "qemu.CreateNetwork")
    for name in names:
        cl.done(cl.net.DeleteNetwork(np_.DeleteNetworkRequest(name=name, request_id=rid()))
                .operation, timeout=120)


def qemu_images(cl, pool_id, tag, n, size_mib, images_dir, port):
    """Imports of one qcow2 image (SIZE MiB, 3/4 written) into the pool: N
    from its host path, N downloaded over HTTP from this process; then N
    CreateVm without and N with user_data (the config drive: an ISO built
    and uploaded into pool `default` of hosts/qemu, made here)."""
    import subprocess
    import image_server
    image = os.path.join(images_dir, "bench.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "%dM" % size_mib],
                   check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 %dM" % (size_mib * 3 // 4), image],
                   check=True, capture_output=True)
    web = image_server.ImageServer(port).start()
    with open(image, "rb") as f:
        web.files["/img/bench.qcow2"] = f.read()
    nbytes = len(web.files["/img/bench.qcow2"])
    print("image: qcow2, %d MiB virtual, %.1f MiB file" % (size_mib, nbytes / MIB), flush=True)
    pool = "hosts/qemu/pools/" + pool_id
    for kind, src in (("path", image), ("url", web.url("/img/bench.qcow2"))):
        xs, names = [], []
        for i in range(n):
            vid = "qi-%s-%s-%03d" % (tag, kind, i)
            xs.append(timed(cl, lambda vid=vid, src=src: cl.storage.CreateVolume(
                sp.CreateVolumeRequest(parent=PARENT, volume_id=vid, request_id=rid(),
                                       volume=sp.Volume(pool=pool, format=QCOW2,
                                                        source_image=src)))))
            names.append("%s/volumes/%s" % (PARENT, vid))
        stats("CreateVolume(qemu, import from %s, %.0f MiB file)" % (kind, nbytes / MIB), xs,
              "qemu.Import." + kind)
        print("  throughput at p50: %.0f MiB/s" % (nbytes / MIB / (sorted(xs)[n // 2] / 1000)),
              flush=True)
        for name in names:
            cl.done(cl.storage.DeleteVolume(sp.DeleteVolumeRequest(name=name, request_id=rid()))
                    .operation, timeout=120)
    web.stop()
    # the server runs with --default-pool POOL_ID + "s"
    seed_pool = create_pool(cl, "qemu", pool_id + "s", os.path.join(images_dir, "seedpool"))
    user_data = "#cloud-config\n" + "write_files:\n" + "".join(
        "  - path: /etc/bench/%d\n    content: %s\n" % (i, "x" * 40) for i in range(16))
    for kind, ud in (("plain", ""), ("user_data", user_data)):
        xs, names = [], []
        for i in range(n):
            vid = "qs-%s-%s-%03d" % (tag, kind.replace("_", ""), i)
            xs.append(timed(cl, lambda vid=vid, ud=ud: cl.vm.CreateVm(vp.CreateVmRequest(
                parent=PARENT, vm_id=vid, request_id=rid(),
                vm=vp.Vm(vcpus=1, memory_mib=128, user_data=ud,
                         placement=vp.VmPlacement(host="hosts/qemu"))))))
            names.append("%s/vms/%s" % (PARENT, vid))
        stats("CreateVm(qemu, %s)" % kind, xs, "qemu.CreateVm." + kind)
        for name in names:
            cl.done(cl.vm.DeleteVm(vp.DeleteVmRequest(name=name, request_id=rid())).operation,
                    timeout=120)
    cl.done(cl.storage.DeletePool(sp.DeletePoolRequest(
        name=seed_pool.name, delete_storage=True, request_id=rid())).operation, timeout=120)


def qemu_teardown(cl, pool_id):
    cl.done(cl.storage.DeletePool(sp.DeletePoolRequest(
        name="hosts/qemu/pools/" + pool_id, delete_storage=True, request_id=rid())).operation,
        timeout=120)


def summary(api_file, raw_file):
    def load(path, pick):
        out = {}
        with open(path) as f:
            for line in f:
                k, ms = pick(line.split())
                if k:
                    out.setdefault(k, []).append(float(ms))
        return out
    api = load(api_file, lambda w: (w[0], w[2]))
    raw = load(raw_file, lambda w: (w[1], w[3][3:]) if len(w) == 4 and w[2].startswith("op=")
               else (None, None))
    for a, r in (("qemu.CreateVolume", "volume-create"), ("qemu.AttachVolume", "volume-attach"),
                 ("qemu.CreateNetwork", "network-create")):
        if a not in api or r not in raw:
            continue
        stats("api " + a, api[a])
        stats("raw " + r, raw[r])
        xa, xr = sorted(api[a]), sorted(raw[r])
        print("  API / raw: mean %.2f, p50 %.2f" % (
            (sum(xa) / len(xa)) / (sum(xr) / len(xr)), xa[len(xa) // 2] / xr[len(xr) // 2]),
            flush=True)


def main():
    mode = sys.argv[1]
    if mode == "summary":
        return summary(sys.argv[2], sys.argv[3])
    addr, ca, pw = sys.argv[2:5]
    a = sys.argv[5:]
    cl = client(addr, ca, pw)
    if mode == "test":
        test_driver(cl, int(a[0]), int(a[1]), int(a[2]), a[3])
    elif mode == "qemu-setup":
        qemu_setup(cl, a[0], a[1])
    elif mode == "qemu-volumes":
        qemu_volumes(cl, a[0], a[1], int(a[2]), int(a[3]))
    elif mode == "qemu-attach":
        qemu_attach(cl, a[0], a[1], int(a[2]), int(a[3]), int(a[4]), float(a[5]))
    elif mode == "qemu-networks":
        qemu_networks(cl, a[0], int(a[1]), a[2])
    elif mode == "qemu-images":
        qemu_images(cl, a[0], a[1], int(a[2]), int(a[3]), a[4], int(a[5]))
    elif mode == "qemu-teardown":
        qemu_teardown(cl, a[0])
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
