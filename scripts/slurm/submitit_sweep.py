#!/usr/bin/env python3
"""A sweep as a Slurm job array through submitit, for those who launch jobs from Python: each
array task runs `vae-tch sweep run` on its shard (vae-tch reads the array's variables), and a
task warned before its time limit (submitit's SIGUSR2, `--signal=USR2@90`) stops vae-tch at a
step and is requeued by submitit, because the submitted function is `Checkpointable`; the
requeued task resumes where it stopped.

    .venv/bin/python scripts/slurm/submitit_sweep.py configs/sweeps/r-loss-fashion.toml \\
        --tasks 3 --cpus 2 --time 240 -- --epochs 20
    .venv/bin/python scripts/slurm/submitit_sweep.py my.toml --out /shared/sweeps/my --tasks 8 \\
        --gpus 1 --partition gpu -- --epochs 20

Prints the job ids and the `vae-tch sweep status` command; `--wait` waits for the tasks.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import submitit

ROOT = Path(__file__).resolve().parents[2]


class SweepTask(submitit.helpers.Checkpointable):
    """One array task: `vae-tch sweep run SWEEP --out DIR FLAGS...`. Checkpointable with no state
    of its own: the sweep folder is the checkpoint, so a requeued task runs the same command."""

    def __init__(self, binary: str, sweep: str, out: str, flags: list[str]):
        self.binary, self.sweep, self.out, self.flags = binary, sweep, out, flags

    def __call__(self, task: int) -> int:
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", env.get("SLURM_CPUS_PER_TASK", "1"))
        cmd = [self.binary, "sweep", "run", self.sweep, "--out", self.out, *self.flags]
        print(f"== task {task} on {os.uname().nodename}, start "
              f"{int(env.get('SLURM_RESTART_COUNT', '0')) + 1}: {' '.join(cmd)}", flush=True)
        r = subprocess.run(cmd, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"vae-tch exit {r.returncode}")
        return r.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", help="the sweep file")
    ap.add_argument("--out", help="the sweep folder, on a file system every node sees [default: sweeps/<file stem>]")
    ap.add_argument("--tasks", type=int, default=4, help="array tasks [default: 4]")
    ap.add_argument("--gpus", type=int, default=0, help="GPUs per task; 0 runs --device cpu")
    ap.add_argument("--cpus", type=int, help="CPUs per task [default: 2, or 4 per GPU]")
    ap.add_argument("--time", type=int, default=240, help="minutes per task [default: 240]")
    ap.add_argument("--partition", help="the partition [default: the cluster's]")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "vae-tch"), help="the vae-tch binary")
    ap.add_argument("--logs", help="submitit's folder [default: <out>/slurm/submitit]")
    ap.add_argument("--wait", action="store_true", help="wait for the tasks and print their ends")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.flags = argv[cut + 1:]  # after --: flags for every task's `sweep run`
    out = Path(args.out or Path("sweeps") / Path(args.sweep).stem).resolve()
    flags = list(args.flags)
    if not any(f == "--device" or f.startswith("--device=") for f in flags):
        flags += ["--device", "cuda" if args.gpus else "cpu"]
    executor = submitit.AutoExecutor(folder=args.logs or out / "slurm" / "submitit")
    params = {"timeout_min": args.time, "cpus_per_task": args.cpus or (4 * args.gpus if args.gpus else 2),
              "slurm_array_parallelism": args.tasks, "name": f"vae-tch-{Path(args.sweep).stem}"}
    if args.gpus:
        params["slurm_gpus_per_task"] = args.gpus
    if args.partition:
        params["slurm_partition"] = args.partition
    executor.update_parameters(**params)
    task = SweepTask(args.binary, str(Path(args.sweep).resolve()), str(out), flags)
    jobs = executor.map_array(task, range(args.tasks))
    print(f"submitted {len(jobs)} tasks: {', '.join(j.job_id for j in jobs)}")
    print(f"watch with:\n  vae-tch sweep status {out}")
    if args.wait:
        for j in jobs:
            try:
                print(f"{j.job_id}: vae-tch exit {j.result()}")
            except Exception as e:  # the task's own error, as submitit reports it
                print(f"{j.job_id}: failed: {e}", file=sys.stderr)
                sys.exit(1)


if __name__ == "__main__":
    main()
