"""A sweep launched through submitit (scripts/slurm/submitit_sweep.py) on a one-node Slurm cluster
(scripts/slurm/local-cluster.sh): two array tasks train the sweep; one task warned as before
its time limit (submitit's SIGUSR2, sent here by hand) is requeued by submitit and resumes, and
every point ends done with each epoch in its metrics.csv exactly once. Skips, saying why, where
Slurm's packages, root or submitit are missing."""
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BINARY, ROOT, TINY_SWEEP, write_synthetic

pytest.importorskip("submitit")
for p in ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch"]:
    if not Path(p).exists():
        pytest.skip(f"no {p} (apt-get install --no-install-recommends slurmctld slurmd slurm-client munge)",
                    allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("not root: slurmd starts jobs as their users", allow_module_level=True)



@pytest.fixture
def cluster(tmp_path):
    state = tmp_path / "slurm"
    env = dict(os.environ, VAE_TCH_SLURM_DIR=str(state),
               VAE_TCH_SLURM_PORT=str(30000 + (os.getpid() % 2000) * 2))
    script = ROOT / "scripts" / "slurm" / "local-cluster.sh"
    r = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    yield dict(os.environ, SLURM_CONF=str(state / "slurm.conf"))
    subprocess.run([str(script), "stop"], env=env, capture_output=True)


def slurm(env, *args):
    return subprocess.run(list(args), env=env, capture_output=True, text=True)


def wait_until(what, seconds, why):
    start = time.time()
    while not what():
        assert time.time() - start < seconds, why
        time.sleep(0.2)


def test_a_submitit_array_is_requeued_when_warned_and_trains_every_epoch_once(tmp_path, cluster):
    write_synthetic(tmp_path / "data", n_train=24, n_test=8)
    (tmp_path / "s.toml").write_text(TINY_SWEEP)
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts/slurm/submitit_sweep.py"), "s.toml", "--out", "sub",
         "--tasks", "2", "--cpus", "1", "--time", "10", "--binary", str(BINARY),
         "--", "--data-dir", "data", "--epochs", "40", "--no-export"],
        cwd=tmp_path, env=cluster, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    jobs = r.stdout.split("submitted 2 tasks: ")[1].split("\n")[0].split(", ")
    assert len(jobs) == 2, r.stdout
    logs = tmp_path / "sub" / "slurm" / "submitit"
    first = logs / f"{jobs[0]}_0_log.err"
    wait_until(lambda: first.exists() and "epoch 2/40" in first.read_text(), 90, "no epoch 2 in task 0")
    assert slurm(cluster, "scancel", "--signal=USR2", jobs[0]).returncode == 0
    wait_until(lambda: "Caught signal SIGUSR2" in first.read_text(), 60, "submitit saw no USR2")
    # Slurm holds a requeued job for about 2 minutes; let it start now.
    wait_until(lambda: "PENDING" in slurm(cluster, "scontrol", "show", "job", jobs[0]).stdout, 60,
               "task 0 was not requeued")
    assert "Restarts=1" in slurm(cluster, "scontrol", "show", "job", jobs[0]).stdout
    assert slurm(cluster, "scontrol", "update", f"jobid={jobs[0]}", "StartTime=now").returncode == 0
    wait_until(lambda: not slurm(cluster, "squeue", "-h").stdout.strip(), 300, "tasks still queued")
    with open(tmp_path / "sub" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["done"] * 4, rows
    for point in (tmp_path / "sub" / "points").iterdir():
        with open(point / "metrics.csv") as f:
            assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, 41)), point
    # Both tasks ended with a result (submitit's pickle), the requeued one on its second start.
    for job in jobs:
        assert (logs / f"{job}_0_result.pkl").exists(), sorted(p.name for p in logs.iterdir())
    assert shutil.which("sbatch")
