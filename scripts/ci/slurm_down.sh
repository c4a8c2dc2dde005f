#!/usr/bin/env bash
# Stop the single-node SLURM that scripts/ci/slurm_up.sh started: cancel its jobs, then stop slurmd,
# slurmctld and munged by the ids in their pid files. A SLURM this script did not start is left alone.
set -uo pipefail
state_dir=${SLURM_CI_STATE:-/var/lib/eventkit-ci/slurm}
if [ ! -e "$state_dir/started-here" ]; then
  echo "slurm_down: no SLURM started by slurm_up.sh: nothing to stop" >&2
  exit 0
fi
command -v scancel >/dev/null && scancel --user "$(id -un)" >/dev/null 2>&1
stop() {  # stop <name> <pid file>: TERM, wait up to 10 s, then KILL
  local name=$1 pidfile=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || { echo "slurm_down: stopped $name ($pid)" >&2; return 0; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null; echo "slurm_down: killed $name ($pid)" >&2
}
stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
rm -f "$state_dir/started-here"
