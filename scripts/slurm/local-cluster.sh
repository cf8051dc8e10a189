#!/usr/bin/env bash
# A one-node Slurm cluster on 127.0.0.1, for trying the sbatch path of a sweep without a cluster.
# Debian's packages, started by hand (no systemd), everything under one state folder:
#
#   sudo apt-get install --no-install-recommends slurmctld slurmd slurm-client munge
#   sudo scripts/slurm/local-cluster.sh start      # prints the line to source
#   source /tmp/vae-tch-slurm/env                   # SLURM_CONF for sbatch, squeue, scontrol
#   sbatch scripts/slurm/sweep.sbatch configs/sweeps/r-loss-fashion.toml
#   sudo scripts/slurm/local-cluster.sh stop       # stops munged, slurmctld, slurmd by PID
#
# The node has this machine's CPUs and memory and no GPU (a --gpus-per-task job is refused, as on
# any CPU cluster). Runs as root: slurmd starts jobs as their users. VAE_TCH_SLURM_DIR moves the
# state folder; VAE_TCH_SLURM_PORT (6817) the controller's port, the node's is the next one.
set -euo pipefail
dir=${VAE_TCH_SLURM_DIR:-/tmp/vae-tch-slurm}
port=${VAE_TCH_SLURM_PORT:-6817}

stop() {
  for name in slurmd slurmctld munged; do
    pidfile=$dir/$name.pid
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

case ${1:-} in
start)
  for cmd in munged slurmctld slurmd sbatch; do
    command -v "$cmd" >/dev/null || [[ -x /usr/sbin/$cmd ]] || {
      echo "$cmd not found: apt-get install --no-install-recommends slurmctld slurmd slurm-client munge" >&2
      exit 1
    }
  done
  [[ $(id -u) == 0 ]] || { echo "run as root: slurmd starts jobs as their users" >&2; exit 1; }
  stop
  mkdir -p "$dir"/{state,spool,log}
  chmod 700 "$dir"
  # munge: a fresh key, its own socket.
  head -c 1024 /dev/urandom > "$dir/munge.key"
  chmod 400 "$dir/munge.key"
  /usr/sbin/munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge.seed"
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$dir/slurm.conf" <<EOF
ClusterName=vae-tch-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$dir/slurm.conf
  /usr/sbin/slurmctld -i
  /usr/sbin/slurmd
  echo "export SLURM_CONF=$dir/slurm.conf" > "$dir/env"
  for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then
      echo "one-node Slurm cluster up ($cpus CPUs, $mem MB); now: source $dir/env"
      exit 0
    fi
    sleep 0.2
  done
  echo "the node did not come up; see $dir/log/" >&2
  sinfo >&2 || true
  tail -5 "$dir"/log/*.log >&2 || true
  exit 1
  ;;
stop)
  stop
  echo "stopped (state in $dir)"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
