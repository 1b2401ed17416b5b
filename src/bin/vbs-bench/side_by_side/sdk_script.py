"""What a Python script with openstacksdk does today: one connection, then
one volume after the other, a snapshot and a backup of that snapshot, each
awaited with the block-storage proxy's `wait_for_status` (a GET every POLL
seconds), then the snapshot is deleted and awaited with `wait_for_delete`.
Credentials come from the OS_* environment.

Usage: python3 sdk_script.py POLL_SECONDS VOLUME_ID...
Exit 0 when every volume got an available backup, 1 otherwise.
"""

import datetime
import sys

import openstack


def main(argv):
    poll = float(argv[1])
    volumes = argv[2:]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    storage = openstack.connect().block_storage
    failed = 0
    for volume in volumes:
        name = f"sdk-{volume}-{stamp}"
        try:
            snapshot = storage.create_snapshot(volume_id=volume, name=name, force=True)
            snapshot = storage.wait_for_status(
                snapshot, "available", failures=["error"], interval=poll, wait=3600
            )
            backup = storage.create_backup(
                volume_id=volume, snapshot_id=snapshot.id, name=name, force=True
            )
            storage.wait_for_status(
                backup, "available", failures=["error"], interval=poll, wait=3600
            )
            storage.delete_snapshot(snapshot)
            storage.wait_for_delete(snapshot, interval=poll, wait=3600)
        except openstack.exceptions.SDKException as e:
            failed += 1
            print(f"{volume}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
