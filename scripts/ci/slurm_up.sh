#!/usr/bin/env bash
# Start a single-node SLURM on this machine (as root): munged, slurmctld and slurmd on localhost with the
# CPUs this machine has (nproc) and 90 % of its memory, one partition "debug" (the default).
# Installs Debian's slurm-wlm and munge with apt when they are missing. No cgroup plugin (no systemd in
# a container): proctrack/linuxproc, task/none, and no cgroup.conf.
# Succeeds only when `sinfo` shows the node idle; otherwise prints what failed and exits 1.
# Idempotent: a running SLURM started by this script is left as it is.
set -euo pipefail

fail() { echo "slurm_up: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (it starts munged, slurmctld and slurmd)"

node=$(hostname -s)
state_dir=${SLURM_CI_STATE:-/var/lib/eventkit-ci/slurm}
mkdir -p "$state_dir"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm_up: installing slurm-wlm and munge (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$state_dir/apt.log" 2>&1 || fail "apt-get update failed (see $state_dir/apt.log)"
  apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$state_dir/apt.log" 2>&1 \
    || fail "apt-get install slurm-wlm munge failed (see $state_dir/apt.log)"
fi

if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
  echo "slurm_up: SLURM already running: $(sinfo -h -o '%P %t %c CPUs' | tr '\n' ' ')" >&2
  exit 0
fi
touch "$state_dir/started-here"   # slurm_down.sh stops only daemons this script started

# munge: key from the package (create one if absent), daemon as the munge user
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key && chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged || fail "munged did not start (see /var/log/munge/munged.log)"
fi
for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n | unmunge >/dev/null 2>&1 || fail "munge does not work: munge -n | unmunge failed (see /var/log/munge/munged.log)"

# slurm.conf for this node: CPUs and memory as slurmd detects them
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
# written by eventkit scripts/ci/slurm_up.sh: single-node SLURM for the engine tests
ClusterName=eventkit-ci
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
EnforcePartLimits=ALL
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
Waittime=0
NodeName=$node CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
rm -f /etc/slurm/cgroup.conf   # 22.05 refuses CgroupPlugin=disabled; without the file no cgroup plugin loads

pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld || fail "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
for _ in $(seq 30); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
scontrol ping | grep -q UP || fail "slurmctld does not answer scontrol ping (see /var/log/slurm/slurmctld.log)"
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd || fail "slurmd did not start (see /var/log/slurm/slurmd.log)"
for _ in $(seq 60); do
  state=$(sinfo -h -n "$node" -o %t 2>/dev/null | head -1)
  [ "$state" = idle ] && break
  case "$state" in down*|drain*|fail*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;; esac
  sleep 1
done
[ "$(sinfo -h -n "$node" -o %t | head -1)" = idle ] \
  || fail "node $node is not idle after 60 s: $(sinfo -h -o '%P %t %E' | tr '\n' ' ') (see /var/log/slurm/slurmd.log)"
echo "slurm_up: SLURM is up: node $node, $cpus CPUs, ${mem_mb} MB, partitions: $(sinfo -h -o %P | tr '\n' ' ')" >&2
