"""novacron_stubs - Python gRPC stubs for NovaCron, generated from proto/.

Generates the novacron.v1 messages and service stubs, plus the standard
grpc.health.v1 and grpc.reflection.v1/v1alpha stubs, with protoc and the
grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc,
grpc-proto), and puts them on sys.path. Nothing generated is committed.

    import novacron_stubs
    novacron_stubs.load()                      # cached, see below
    from novacron.v1 import vm_pb2, vm_pb2_grpc
    from grpcstubs.health.v1 import health_pb2, health_pb2_grpc

The gRPC protos are compiled under the Python package ``grpcstubs`` (file
names grpcstubs/health/v1/health.proto, ...) so they do not collide with the
installed ``grpc`` package; their protobuf package (grpc.health.v1, ...) and so
every message and method name on the wire are unchanged.

As a program: ``python3 novacron_stubs.py OUT_DIR`` writes the stubs to OUT_DIR.

Environment: NOVACRON_PROTO_DIR (default: ../../proto next to this file),
NOVACRON_STUBS_CACHE (default: $XDG_CACHE_HOME/novacron/python-stubs).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GRPC_PROTO_DIR = "/usr/share/grpc-proto"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
GRPC_PROTOS = [
    "grpcstubs/health/v1/health.proto",
    "grpcstubs/reflection/v1/reflection.proto",
    "grpcstubs/reflection/v1alpha/reflection.proto",
]


def proto_dir():
    """The directory holding novacron/v1/*.proto."""
    d = os.environ.get("NOVACRON_PROTO_DIR") or os.path.join(HERE, "..", "..", "proto")
    return os.path.abspath(d)


def novacron_protos(root=None):
    """Relative paths of every novacron .proto file, sorted."""
    root = root or proto_dir()
    out = []
    for dirpath, _, files in os.walk(os.path.join(root, "novacron")):
        for f in files:
            if f.endswith(".proto"):
                out.append(os.path.relpath(os.path.join(dirpath, f), root))
    if not out:
        raise RuntimeError("no .proto files under %s/novacron" % root)
    return sorted(out)


def generate(out_dir, root=None):
    """Runs protoc: Python messages and gRPC stubs into out_dir."""
    root = root or proto_dir()
    for tool in ("protoc", GRPC_PYTHON_PLUGIN):
        if not shutil.which(tool):
            raise RuntimeError(
                "%s not found: install protobuf-compiler and protobuf-compiler-grpc" % tool)
    if not os.path.isdir(GRPC_PROTO_DIR):
        raise RuntimeError("%s not found: install grpc-proto" % GRPC_PROTO_DIR)
    os.makedirs(out_dir, exist_ok=True)
    cmd = ["protoc", "-I", root, "-I", "grpcstubs=%s/grpc" % GRPC_PROTO_DIR,
           "-I", "/usr/include", "--python_out=" + out_dir, "--grpc_python_out=" + out_dir,
           "--plugin=protoc-gen-grpc_python=" + GRPC_PYTHON_PLUGIN]
    cmd += novacron_protos(root) + GRPC_PROTOS
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise RuntimeError("protoc failed:\n" + res.stdout)
    return out_dir


def _fingerprint(root):
    h = hashlib.sha256()
    for rel in novacron_protos(root):
        h.update(rel.encode())
        with open(os.path.join(root, rel), "rb") as f:
            h.update(f.read())
    h.update(subprocess.run(["protoc", "--version"], stdout=subprocess.PIPE).stdout)
    return h.hexdigest()[:16]


def load(out_dir=None, root=None):
    """Puts the stubs on sys.path, generating them first if needed.

    With out_dir, generates into it (every call). Without, uses a cache
    directory keyed by the protos' contents, so edits regenerate.
    Returns the directory."""
    root = root or proto_dir()
    if out_dir is None:
        cache = os.environ.get("NOVACRON_STUBS_CACHE") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
            "novacron", "python-stubs")
        out_dir = os.path.join(cache, _fingerprint(root))
        if not os.path.isdir(out_dir):
            os.makedirs(cache, exist_ok=True)
            tmp = tempfile.mkdtemp(dir=cache, prefix=".tmp-")
            try:
                generate(tmp, root)
                os.rename(tmp, out_dir)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
                if not os.path.isdir(out_dir):
                    raise
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    else:
        generate(out_dir, root)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: %s OUT_DIR" % sys.argv[0])
    print(generate(sys.argv[1]))
