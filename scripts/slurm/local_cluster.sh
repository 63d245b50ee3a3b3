#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for tests and for trying the batch scripts on a laptop.
#
#   scripts/slurm/local_cluster.sh up DIR     install slurm-wlm + munge if absent (Debian/Ubuntu, as root),
#                                             write DIR/slurm.conf, start munged (if not running), slurmctld,
#                                             slurmd; wait until the node is idle
#   scripts/slurm/local_cluster.sh down DIR   stop the daemons that `up DIR` started (by PID file)
#
# After `up`, point the client commands at the cluster:  export SLURM_CONF=DIR/slurm.conf
# No systemd, no cgroups, no accounting: proctrack/linuxproc, task/none (see the recipe in the README).
# The node is named `localhost` (NodeAddr 127.0.0.1); it offers all of this machine's CPUs.
set -euo pipefail

usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
DIR=$2

log() { echo "[local_cluster] $*"; }
die() { echo "[local_cluster] error: $*" >&2; exit 1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "slurm-wlm/munge are not installed and this is not root; install them: apt-get install -y slurm-wlm munge"
    command -v apt-get >/dev/null || die "slurm-wlm/munge are not installed and there is no apt-get; install Slurm and munge by hand"
    log "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local apt_log=$DIR/log/apt.log
    apt-get update >"$apt_log" 2>&1 || { tail -n 20 "$apt_log" >&2; die "apt-get update failed (log above)"; }
    # without systemd, "invoke-rc.d: policy-rc.d denied execution of start" is expected: we start the daemons
    apt-get install -y slurm-wlm munge >>"$apt_log" 2>&1 \
        || { tail -n 20 "$apt_log" >&2; die "apt-get install -y slurm-wlm munge failed (log above)"; }
}

start_munge() {
    local key=/etc/munge/munge.key
    if [ ! -s "$key" ]; then
        mungekey -c -f -k "$key"
        chown munge:munge "$key"
        chmod 400 "$key"
    fi
    if [ -S /run/munge/munge.socket.2 ] && munge -n >/dev/null 2>&1; then
        return  # someone else's munged; leave it alone
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge  # no systemd tmpfiles here
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/run/munged.started-by-us"
    for _ in $(seq 1 50); do munge -n >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged did not come up"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_conf() {
    # Two free ports (6817/6818 unless taken, e.g. by a real Slurm on this machine or another local cluster).
    local port=6817
    while ! port_free "$port" || ! port_free $((port + 1)); do
        port=$((port + 2))
        [ "$port" -lt 6917 ] || die "no two free ports in 6817..6917 for slurmctld/slurmd"
    done
    # Requeued jobs wait cred_expire seconds before they may start again (default 120 s); 10 s here.
    # The scheduler looks at pending jobs every second (default 60 s; backfill 30 s).
    cat > "$DIR/slurm.conf" <<CONF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
DependencyParameters=kill_invalid_depend
ReturnToService=2
MinJobAge=3600
KillWait=30
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

alive() {  # PID: running (a zombie, which kill -0 still finds, does not count)
    if [ -r "/proc/$1/stat" ]; then
        [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ] && [ -e "/proc/$1" ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}
pid_alive() { [ -s "$1" ] && alive "$(cat "$1")"; }
running() {  # NAME: a live process of that name (a zombie not yet reaped does not count)
    local pid
    for pid in $(pgrep -x "$1"); do alive "$pid" && return 0; done
    return 1
}

up() {
    mkdir -p "$DIR"/{state,spool,log,run}
    DIR=$(cd "$DIR" && pwd)
    install_packages
    if pid_alive "$DIR/run/slurmctld.pid" || pid_alive "$DIR/run/slurmd.pid"; then
        die "a cluster from $DIR is already running; run '$0 down $DIR' first"
    fi
    start_munge
    write_conf
    export SLURM_CONF=$DIR/slurm.conf
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF" -N localhost
    for _ in $(seq 1 300); do
        sinfo -h -o %T 2>/dev/null | grep -qx idle && break
        sleep 0.1
    done
    # the controller answering must be ours (not one of another cluster on the same port)
    local config_now
    config_now=$(scontrol show config 2>/dev/null || true)
    if ! pid_alive "$DIR/run/slurmctld.pid" || ! grep -q "^StateSaveLocation *= *$DIR/state\$" <<<"$config_now"; then
        tail -n 20 "$DIR/log/slurmctld.log" >&2 || true
        die "slurmctld of $DIR is not running or not the one answering (log above)"
    fi
    if ! sinfo -h -o %T 2>/dev/null | grep -qx idle; then
        sinfo >&2 || true
        tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
        die "the node did not become idle in 30 s (logs above)"
    fi
    log "up: $(sinfo -h -o '%P %a %D %T %N' | head -1)"
    echo "export SLURM_CONF=$SLURM_CONF"
}

down() {
    [ -d "$DIR" ] || die "$DIR does not exist"
    local f pid
    for f in "$DIR/run/slurmd.pid" "$DIR/run/slurmctld.pid"; do
        if pid_alive "$f"; then
            pid=$(cat "$f")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
            if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
        fi
    done
    # munged: only if `up` started it, and no other Slurm daemon on this machine still needs it
    if [ -e "$DIR/run/munged.started-by-us" ]; then
        rm -f "$DIR/run/munged.started-by-us"
        if command -v pgrep >/dev/null && ! running slurmctld && ! running slurmd \
            && [ -s /run/munge/munged.pid ]; then
            kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
        fi
    fi
    log "down: daemons of $DIR stopped"
}

case $action in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
