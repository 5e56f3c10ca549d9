#!/usr/bin/env bash
# A real single-node SLURM for the tests (Debian's slurm-wlm and munge), as root, without systemd or
# cgroups. `start` installs what is missing, writes /etc/slurm/slurm.conf for this host, starts munged,
# slurmctld and slurmd, and smoke-tests sbatch; `stop` stops them by their pid files; `status` tells.
# State (pid files, logs, spool) lives in $SLURM_STATE (default /tmp/ogc-upscaler-slurm).
set -euo pipefail

STATE=${SLURM_STATE:-/tmp/ogc-upscaler-slurm}
HOST=$(hostname -s)

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "slurm.sh: must run as root (it installs packages and starts the SLURM daemons)" >&2
        exit 1
    fi
}

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    local packages=(slurmd slurmctld slurm-client munge)
    # the systemd units fail to enable without systemd: harmless, the install still succeeds
    apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null
    }
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq 1 $((seconds * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "slurm.sh: $what did not come up within ${seconds}s; logs in $STATE/log" >&2
    return 1
}

start_munge() {
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        head -c 1024 /dev/urandom > /etc/munge/munge.key
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key && chmod 755 /run/munge
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        runuser -u munge -- munged
        wait_for 10 munged sh -c 'munge -n | unmunge'
    fi
}

write_conf() {
    local cpus sockets cores threads memory
    local line
    line=$(slurmd -C | head -1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$line")
    sockets=$(sed -n 's/.*Boards=[0-9]* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$line")
    [ -n "$sockets" ] || sockets=$(sed -n 's/.*Sockets=\([0-9]*\).*/\1/p' <<<"$line")
    cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$line")
    threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$line")
    memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$(slurmd -C)")
    memory=$((memory > 1024 ? memory - 512 : memory))
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
    cat > /etc/slurm/slurm.conf <<EOF
# written by ogc-upscaler's scripts/slurm.sh for the tests: one node, no cgroups, no accounting
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobContainerType=job_container/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

running() {  # running PIDFILE
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_idle() {
    case "$(sinfo -h -n "$HOST" -o %t 2>/dev/null)" in idle*|mix*|alloc*) return 0 ;; *) return 1 ;; esac
}

start() {
    need_root
    install
    start_munge
    if running "$STATE/slurmctld.pid" && running "$STATE/slurmd.pid"; then
        echo "slurm.sh: already running (state in $STATE)"
        return
    fi
    write_conf
    # A fresh start forgets what an earlier, killed SLURM left (-c clears the saved state, the spool goes):
    # recovered jobs would otherwise hold the node's CPUs and the node would read idle before slurmd
    # registered, so the smoke job (and the tests) queued behind jobs nothing runs any more.
    if ! running "$STATE/slurmctld.pid"; then
        running "$STATE/slurmd.pid" || rm -rf "${STATE:?}/d" && mkdir -p "$STATE/d"
        slurmctld -c -i
    fi
    wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP'
    running "$STATE/slurmd.pid" || slurmd
    if ! wait_for 20 "the node" node_idle; then
        scontrol update NodeName="$HOST" State=RESUME
        wait_for 20 "the node" node_idle
    fi
    local out="$STATE/smoke-$$.out" id
    id=$(sbatch --parsable --output="$out" --wrap 'echo ok')
    if ! wait_for 300 "smoke job $id" grep -q ok "$out"; then
        { squeue; sinfo -N -l; } >&2 || true
        return 1
    fi
    rm -f "$out"
    echo "slurm.sh: SLURM is up on $HOST (partition debug; state and logs in $STATE)"
}

stop_daemon() {  # stop_daemon PIDFILE NAME
    local pid
    [ -s "$1" ] || return 0
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    echo "slurm.sh: $2 ($pid) did not stop; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    need_root
    stop_daemon "$STATE/slurmd.pid" slurmd
    stop_daemon "$STATE/slurmctld.pid" slurmctld
    stop_daemon /run/munge/munged.pid munged
    echo "slurm.sh: stopped"
}

status() {
    if running "$STATE/slurmctld.pid" && running "$STATE/slurmd.pid"; then
        sinfo
    else
        echo "slurm.sh: not running"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
