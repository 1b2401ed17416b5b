#!/usr/bin/env bash
# What an ops cron job does today with the openstack CLI: one volume after
# the other, a snapshot, a backup of that snapshot, each polled with `show`
# every POLL seconds until available, then the snapshot is deleted (without
# waiting for it to be gone). Every command is a new process that
# authenticates and discovers the API anew. Credentials come from OS_*.
#
# Usage: cli_loop.sh POLL_SECONDS VOLUME_ID...
# Exit 0 when every volume got an available backup, 1 otherwise.

poll=$1
shift
stamp=$(date -u +%Y%m%dT%H%M%SZ)
failed=0

# wait_for KIND ID: polls `openstack volume KIND show` until available.
wait_for() {
    local status
    while :; do
        status=$(openstack volume "$1" show "$2" -f value -c status) || return 1
        case $status in
            available) return 0 ;;
            error*) echo "$1 $2: $status" >&2; return 1 ;;
        esac
        sleep "$poll"
    done
}

for volume in "$@"; do
    name="cron-$volume-$stamp"
    snapshot=$(openstack volume snapshot create --volume "$volume" --force \
        -f value -c id "$name") && wait_for snapshot "$snapshot" || {
        failed=$((failed + 1)); continue
    }
    backup=$(openstack volume backup create --snapshot "$snapshot" --force \
        --name "$name" -f value -c id "$volume") && wait_for backup "$backup" ||
        failed=$((failed + 1))
    openstack volume snapshot delete "$snapshot" || failed=$((failed + 1))
done

[ "$failed" -eq 0 ]
