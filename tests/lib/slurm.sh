# A single-machine Slurm cluster from Debian's packages for the [hpc] tests, sourced by
# tests/provision.sh. One node (this host, `hostname -s`) with 8 task slots, one partition,
# munge authentication, no accounting and no cgroups (proctrack/linuxproc: cgroup v1 here has
# nothing delegated, as on many older clusters). PID 1 need not be systemd: munged, slurmctld
# and slurmd are started directly and their pid files checked, so running it again is a no-op.

SLURM_CONF=/etc/slurm/slurm.conf
SLURM_STATE=/var/lib/slurm

slurm_log() { echo "slurm: $*"; }

# The slurm.conf of the test cluster (rewritten when it differs).
slurm_write_conf() {
    local host conf
    host=$(hostname -s)
    conf=$(cat <<CONF
# burrow's test cluster (tests/lib/slurm.sh): one node, written by tests/provision.sh.
ClusterName=burrowtest
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SLURM_STATE/slurmctld
SlurmdSpoolDir=$SLURM_STATE/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=30
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
PlugStackConfig=/etc/slurm/plugstack.conf
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 RealMemory=2048 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
)
    mkdir -p /etc/slurm "$SLURM_STATE/slurmctld" "$SLURM_STATE/slurmd" /var/log/slurm
    chown slurm: "$SLURM_STATE/slurmctld" /var/log/slurm
    if [ "$(cat "$SLURM_CONF" 2>/dev/null)" != "$conf" ]; then
        printf '%s\n' "$conf" > "$SLURM_CONF"
        chmod 0644 "$SLURM_CONF"
        SLURM_CONF_CHANGED=1
    fi
    [ -e /etc/slurm/plugstack.conf ] || : > /etc/slurm/plugstack.conf
}

slurm_running() { # pidfile
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

slurm_start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile /etc/munge/munge.key
        chown munge: /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge && chown munge: /run/munge && chmod 0755 /run/munge
    if ! slurm_running /run/munge/munged.pid; then
        runuser -u munge -- /usr/sbin/munged
    fi
    munge -n | unmunge >/dev/null || { slurm_log "munge does not work"; return 1; }
}

# Starts (or, after a config change, restarts) slurmctld and slurmd and waits for the node.
slurm_start_cluster() {
    SLURM_CONF_CHANGED=0
    slurm_write_conf
    slurm_start_munge || return 1
    if [ "$SLURM_CONF_CHANGED" = 1 ]; then
        for d in slurmd slurmctld; do
            slurm_running /run/$d.pid && kill "$(cat /run/$d.pid)"
        done
        sleep 1
    fi
    slurm_running /run/slurmctld.pid || /usr/sbin/slurmctld -i
    slurm_running /run/slurmd.pid || /usr/sbin/slurmd
    local i state
    for i in $(seq 60); do
        state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1)
        case "$state" in
        idle|mixed|allocated) slurm_log "node $(hostname -s) is $state"; return 0 ;;
        down*|drain*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null ;;
        esac
        sleep 0.5
    done
    slurm_log "the node did not come up (state: ${state:-none}); see /var/log/slurm/*.log"
    return 1
}
