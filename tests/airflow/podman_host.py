"""Debian's podman serving the Docker API on a unix socket, for the DockerOperator test.

This machine mounts cgroup v1 controllers beside a cgroup2 ``unified`` tree, which crun
refuses ("cgroups in hybrid mode not supported"). The service therefore runs in a mount
namespace of its own without the ``unified`` mount, with cgroups disabled for its
containers, the ulimits crun may set, and the host network (the trainer needs none).

The trainer image is built locally (no registry): ``podman import`` of an empty root
(directories, the ``/usr`` symlinks, a passwd file), and the project environment — the
interpreter, ``.venv`` and this checkout — mounted read-only into every container by the
service's ``containers.conf``, so the container runs this checkout's ``python -m
gogooku3.cli train ...``. The lake and the MLflow store are the operator's own mounts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/gogooku3-trainer:podman-test"


def unavailable() -> str | None:
    """Why this machine cannot run the podman service (``None`` when it can)."""
    if shutil.which("podman") is None:
        return "podman is not installed (make sysdeps installs it)"
    if os.geteuid() != 0:
        return "the podman service needs root here (a mount namespace without cgroup2)"
    return None


def _readonly_paths() -> list[str]:
    venv = ROOT / ".venv"
    paths = sorted({"/usr", sys.base_prefix, str(ROOT), str(venv.resolve())})
    # a path inside another one comes with it
    return [p for p in paths if not any(p.startswith(q + "/") for q in paths)]


def write_conf(workdir: Path) -> Path:
    """``containers.conf`` of the service (see the module docstring)."""
    volumes = ", ".join(f'"{p}:{p}:ro"' for p in _readonly_paths())
    conf = workdir / "containers.conf"
    conf.write_text(
        "[containers]\n"
        'cgroups = "disabled"\n'
        'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
        'netns = "host"\n'
        f"volumes = [{volumes}]\n"
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n')
    return conf


def _skeleton(workdir: Path) -> Path:
    """A tarball of an empty root: what the read-only mounts need to land on."""
    root = workdir / "rootfs"
    for d in ("usr", "etc", "tmp", "proc", "sys", "dev", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"),
                         ("sbin", "usr/sbin")):
        if not (root / link).is_symlink():
            (root / link).symlink_to(target)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    tar = workdir / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(root.iterdir()):
            t.add(entry, arcname=entry.name)
    return tar


class PodmanService:
    """``podman system service`` on ``workdir/podman.sock`` (see the module docstring)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.socket = workdir / "podman.sock"
        self.env = {**os.environ, "CONTAINERS_CONF": str(write_conf(workdir))}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def build_image(self) -> str:
        """Import the trainer image; its PATH starts with this checkout's ``.venv/bin`` and
        its PYTHONPATH is this checkout (not wherever the venv's editable install points)."""
        path = f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        subprocess.run(
            ["podman", "import", "--change", f"ENV PATH={path}", "--change", "ENV HOME=/tmp",
             "--change", f"ENV PYTHONPATH={ROOT / 'plugins'}:{ROOT}",
             "--change", "WORKDIR /tmp", str(_skeleton(self.workdir)), IMAGE],
            env=self.env, check=True, capture_output=True, text=True, timeout=300)
        return IMAGE

    def start(self, timeout: float = 60) -> str:
        script = ("umount /sys/fs/cgroup/unified 2>/dev/null || true; "
                  f"exec podman system service --time=0 {self.url}")
        log = open(self.workdir / "podman-service.log", "w")  # noqa: SIM115 (kept open)
        self.proc = subprocess.Popen(["unshare", "-m", "sh", "-c", script], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists():
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"podman system service did not come up on {self.socket}:\n"
                           + (self.workdir / "podman-service.log").read_text()[-3000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
