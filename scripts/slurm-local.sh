#!/usr/bin/env bash
# scripts/slurm-local.sh install|start|stop|status: a one-node Slurm cluster on this machine,
# so that `lsexp sweep --executor slurm` and the tests marked `slurm` run against a real
# slurmctld/slurmd (CI does this in .ci/run). Debian/Ubuntu, as root, no systemd needed.
#
#   install  apt-get install slurm-wlm, munge, slurmdbd and mariadb-server if missing
#   start    start munged, MariaDB, slurmdbd, slurmctld and slurmd; idempotent (a daemon
#            this script started that still runs is kept); exit 1 with the reason if the
#            node is not idle within $LSEXP_SLURM_TIMEOUT seconds (default 60)
#   stop     cancel the cluster's jobs, then stop the daemons this script started, by the
#            PIDs it recorded; never a daemon it did not start
#   status   the recorded daemons and `sinfo`; exit 0 if the node answers, else 1
#
# The cluster: ClusterName=lsexp-local, one node (this host, its hardware from
# `slurmd -C`), partitions `debug` (the default) and `batch`, both on that node.
# Files: /etc/slurm/slurm.conf and slurmdbd.conf (written by start; a slurm.conf written by
# anyone else is never overwritten), logs in /var/log/slurm, PIDs and daemon output in
# $LSEXP_SLURM_STATE (default /run/lsexp-slurm).
#
# Why it is built this way (found while bringing Slurm 22.05 up on a container CI machine):
# - Debian's package scripts cannot start daemons without systemd, so each daemon runs in
#   the foreground (-D / --foreground) under `setsid ... &` and its PID is recorded.
# - submitit learns the state of finished, cancelled and failed jobs from `sacct`; without
#   accounting (slurmdbd + a database) a cancelled job stays UNKNOWN and never returns.
#   MariaDB listens on its Unix socket only (--skip-networking).
# - SchedulerParameters=batch_sched_delay=0 removes a ~3 s wait before each array task.
# - The daemons run in their own session: ending the caller's process group does not stop
#   them, so callers stop them explicitly (.ci/run: `trap ... EXIT`).
# - A daemon killed here may stay a zombie when nothing reaps it: state Z counts as
#   stopped, and a recorded PID is signalled only while /proc/PID/comm is that daemon.
set -euo pipefail

STATE_DIR=${LSEXP_SLURM_STATE:-/run/lsexp-slurm}
TIMEOUT=${LSEXP_SLURM_TIMEOUT:-60}
CLUSTER=lsexp-local
MARK="# written by lsexp scripts/slurm-local.sh"
DB_PASS=lsexp-local # the database listens on its Unix socket only; test use only
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd) # start order; stop is the reverse
NEED=(munged mungekey slurmctld slurmd slurmdbd mariadbd sinfo)
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)

log() { echo "[slurm-local] $*"; }
err() { echo "[slurm-local] ERROR: $*" >&2; }

usage() {
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
}

need_root() {
    [ "$(id -u)" = 0 ] || { err "$1 needs root (sudo $0 $1)"; exit 1; }
}

# alive NAME: the PID recorded for daemon NAME exists, is not a zombie, and runs NAME.
alive() {
    local f="$STATE_DIR/$1.pid" p st
    [ -s "$f" ] || return 1
    p=$(cat "$f")
    [ -r "/proc/$p/stat" ] || return 1
    st=$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f1)
    [ "$st" != Z ] || return 1
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ]
}

# stop_daemon NAME: TERM the recorded PID, KILL after 15 s; forget the PID once it is gone.
stop_daemon() {
    local name=$1 f="$STATE_DIR/$1.pid" p
    [ -s "$f" ] || return 0
    p=$(cat "$f")
    if ! alive "$name"; then
        rm -f "$f"
        return 0
    fi
    log "stopping $name (pid $p)"
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 60); do
        alive "$name" || break
        sleep 0.25
    done
    if alive "$name"; then
        log "$name did not exit within 15 s; sending KILL"
        kill -KILL "$p" 2>/dev/null || true
        sleep 0.5
    fi
    if alive "$name"; then
        err "$name (pid $p) is still running"
        return 1
    fi
    rm -f "$f"
}

installed() {
    local b
    for b in "${NEED[@]}"; do command -v "$b" >/dev/null || return 1; done
}

cmd_install() {
    need_root install
    if installed; then
        log "already installed: slurm-wlm $(dpkg-query -W -f '${Version}' slurm-wlm 2>/dev/null)"
        return 0
    fi
    mkdir -p "$STATE_DIR"
    log "apt-get install ${PACKAGES[*]} (log: $STATE_DIR/apt.log)"
    # policy-rc.d 101 keeps the packages' postinst scripts from starting the daemons
    # themselves (invoke-rc.d(8)); this script starts them in start.
    local added_policy=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        added_policy=1
    fi
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                "${PACKAGES[@]}"
    } >"$STATE_DIR/apt.log" 2>&1 || rc=$?
    [ "$added_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
    if [ "$rc" != 0 ]; then
        tail -n 20 "$STATE_DIR/apt.log" >&2
        err "apt-get failed (exit $rc); full log in $STATE_DIR/apt.log"
        exit 1
    fi
    log "installed: slurm-wlm $(dpkg-query -W -f '${Version}' slurm-wlm 2>/dev/null)"
}

# ---- start ------------------------------------------------------------------------------

STARTED=() # daemons this invocation started: stopped again if the start fails

fail() {
    err "$*"
    if [ "${#STARTED[@]}" -gt 0 ]; then
        log "stopping what this start started: ${STARTED[*]}"
        local i
        for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_daemon "${STARTED[$i]}" || true; done
    fi
    exit 1
}

# launch NAME CMD...: run CMD (a daemon in the foreground) in its own session, record its PID.
launch() {
    local name=$1
    shift
    if alive "$name"; then
        log "$name already running (pid $(cat "$STATE_DIR/$name.pid"))"
        return 0
    fi
    setsid "$@" >>"$STATE_DIR/$name.out" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$STATE_DIR/$name.pid"
    STARTED+=("$name")
    # setsid and setpriv exec the daemon in place: same PID, its comm changes once it runs.
    for _ in $(seq 40); do
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
        setsid | setpriv) sleep 0.05 ;;
        *) break ;;
        esac
    done
    log "started $name (pid $pid)"
}

# wait_for NAME CMD...: poll CMD until it succeeds; fail if daemon NAME died or time is up.
wait_for() {
    local name=$1
    shift
    until "$@" >/dev/null 2>&1; do
        if [ -s "$STATE_DIR/$name.pid" ] && ! alive "$name"; then
            tail -n 5 "$STATE_DIR/$name.out" >&2 || true
            fail "$name exited during start-up (output: $STATE_DIR/$name.out, logs: /var/log/slurm)"
        fi
        if [ $(($(date +%s) - T0)) -ge "$TIMEOUT" ]; then
            fail "$name did not answer within ${TIMEOUT} s (output: $STATE_DIR/$name.out, logs: /var/log/slurm)"
        fi
        sleep 0.25
    done
}

# check_port NAME PORT: refuse to start NAME when another process (not ours) has the port.
check_port() {
    if ! alive "$1" && (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
        fail "port $2 is in use by a process this script did not start (another $1?); stop it first"
    fi
}

node_state() { sinfo -h -n "$HOST" -o '%T' 2>/dev/null; }

write_config() {
    local hw mem new
    # slurmctld rejects a node whose declared CPUs/sockets/cores differ from what slurmd
    # finds, so the line comes from `slurmd -C`; memory a little below it, for the same reason.
    hw=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //; s/ RealMemory=[0-9]+//')
    mem=$(($(slurmd -C | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p') * 95 / 100))
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm /run/munge
    chown slurm:slurm /var/spool/slurmctld /var/log/slurm /run/slurm
    chown munge:munge /run/munge
    new=$(mktemp)
    cat >"$new" <<EOF
$MARK (one-node cluster for lsexp's tests)
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoInAddrAny
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 $hw RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=batch Nodes=$HOST Default=NO MaxTime=INFINITE State=UP
EOF
    if ! cmp -s "$new" /etc/slurm/slurm.conf; then
        if [ -e /etc/slurm/slurm.conf ] && ! grep -qF "$MARK" /etc/slurm/slurm.conf; then
            rm -f "$new"
            fail "/etc/slurm/slurm.conf exists and was not written by this script; not overwriting it (this machine has a Slurm of its own)"
        fi
        if alive slurmctld; then
            log "WARNING: slurm.conf changes while slurmctld runs; run '$0 stop' and start again"
        fi
        install -m 644 "$new" /etc/slurm/slurm.conf
        log "wrote /etc/slurm/slurm.conf"
    fi
    rm -f "$new"
    cat >/etc/slurm/slurmdbd.conf <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chown slurm:slurm /etc/slurm/slurmdbd.conf
    chmod 600 /etc/slurm/slurmdbd.conf
}

cmd_start() {
    need_root start
    installed || { err "Slurm is not installed: run '$0 install' first"; exit 1; }
    mkdir -p "$STATE_DIR"
    T0=$(date +%s)
    HOST=$(hostname -s)
    if ! getent hosts "$HOST" >/dev/null; then
        log "adding '127.0.0.1 $HOST' to /etc/hosts (slurmctld must resolve its host)"
        echo "127.0.0.1 $HOST" >>/etc/hosts
    fi
    write_config

    # munge: every Slurm message is signed with this key.
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
    if ! alive munged && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already runs (not started by this script); using it"
        rm -f "$STATE_DIR/munged.pid"
    else
        launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
        wait_for munged bash -c 'munge -n | unmunge'
    fi

    # accounting: MariaDB on its socket only, then slurmdbd.
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        log "initialising the MariaDB data folder"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE_DIR/mariadb-install.out" 2>&1 ||
            fail "mariadb-install-db failed (see $STATE_DIR/mariadb-install.out)"
    fi
    if ! alive mariadbd && mariadb -e 'select 1' >/dev/null 2>&1; then
        log "MariaDB already runs (not started by this script); using it"
        rm -f "$STATE_DIR/mariadbd.pid"
    else
        launch mariadbd /usr/sbin/mariadbd --user=mysql --skip-networking \
            --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid
        wait_for mariadbd mariadb -e 'select 1'
    fi
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" ||
        fail "could not create the accounting database in MariaDB"
    check_port slurmdbd 6819
    launch slurmdbd slurmdbd -D
    wait_for slurmdbd sacctmgr -n list cluster

    # controller and node daemon. -i: ignore saved state that does not match the config.
    check_port slurmctld 6817
    launch slurmctld slurmctld -D -i
    wait_for slurmctld scontrol ping
    check_port slurmd 6818
    launch slurmd slurmd -D
    until node_state | grep -qE '^(idle|mixed|allocated|completing)'; do
        if [ $(($(date +%s) - T0)) -ge "$TIMEOUT" ]; then
            sinfo -N -l >&2 || true
            tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
            fail "node $HOST not idle within ${TIMEOUT} s (state: '$(node_state)'; logs: /var/log/slurm)"
        fi
        # a node left down by an earlier unclean stop comes back with RESUME
        if node_state | grep -qE '^(down|drain|drained|inval)'; then
            scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
        fi
        sleep 0.25
    done
    local d
    for d in "${DAEMONS[@]}"; do
        if [ -s "$STATE_DIR/$d.pid" ] && ! alive "$d"; then
            fail "$d (pid $(cat "$STATE_DIR/$d.pid")) exited; see $STATE_DIR/$d.out"
        fi
    done
    sinfo
    log "cluster $CLUSTER up in $(($(date +%s) - T0)) s (PIDs in $STATE_DIR; stop: $0 stop)"
}

cmd_stop() {
    need_root stop
    if alive slurmctld; then
        local jobs
        jobs=$(squeue -h -o %F 2>/dev/null | sort -u | tr '\n' ' ')
        if [ -n "${jobs// /}" ]; then
            log "cancelling the remaining jobs: $jobs"
            # shellcheck disable=SC2086 # one argument per job id
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 40); do
                [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break
                sleep 0.25
            done
        fi
    fi
    local rc=0 i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_daemon "${DAEMONS[$i]}" || rc=1; done
    log "stopped"
    return $rc
}

cmd_status() {
    local d up=1
    for d in "${DAEMONS[@]}"; do
        if alive "$d"; then
            echo "$d: running (pid $(cat "$STATE_DIR/$d.pid"))"
        elif [ -s "$STATE_DIR/$d.pid" ]; then
            echo "$d: not running (pid $(cat "$STATE_DIR/$d.pid") recorded)"
        else
            echo "$d: not started by this script"
        fi
    done
    if command -v sinfo >/dev/null && timeout 10 sinfo 2>/dev/null; then up=0; fi
    [ "$up" = 0 ] || echo "sinfo: no Slurm cluster answers"
    return $up
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
