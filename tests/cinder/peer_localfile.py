"""Tiny file-backed Cinder volume driver for a local integration-test Cinder.

Each volume/snapshot is a sparse file under CONF.<backend>.peer_file_dir.
Connections are exported with os-brick's 'local' protocol (device_path),
so cinder-backup can read them directly without iSCSI/LVM/NFS.
"""
import os
import subprocess

from oslo_config import cfg
from oslo_log import log as logging

from cinder.volume import configuration
from cinder.volume import driver

LOG = logging.getLogger(__name__)
opts = [cfg.StrOpt('peer_file_dir', default="vols")]
cfg.CONF.register_opts(opts, group=configuration.SHARED_CONF_GROUP)


class LocalFileDriver(driver.VolumeDriver):
    VERSION = '1.0.0'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(opts)
        self.backend_name = (self.configuration.safe_get('volume_backend_name')
                             or 'peer')
        self.protocol = 'local'

    def _dir(self):
        d = self.configuration.peer_file_dir
        os.makedirs(d, exist_ok=True)
        return d

    def _vpath(self, volume):
        return os.path.join(self._dir(), 'volume-%s' % volume.id)

    def _spath(self, snapshot):
        return os.path.join(self._dir(), 'snapshot-%s' % snapshot.id)

    @staticmethod
    def _mkfile(path, size_gb, label):
        with open(path, 'wb') as f:
            f.write(('cinderpeer %s\n' % label).encode())
            f.truncate(int(size_gb) * 1024 ** 3)

    @staticmethod
    def _copy(src, dst, size_gb=None):
        subprocess.check_call(['cp', '--sparse=always', src, dst])
        if size_gb:
            os.truncate(dst, max(os.path.getsize(dst),
                                 int(size_gb) * 1024 ** 3))

    def check_for_setup_error(self):
        self._dir()

    def validate_connector(self, connector):
        return

    def create_volume(self, volume):
        self._mkfile(self._vpath(volume), volume.size, volume.id)

    def delete_volume(self, volume):
        try:
            os.unlink(self._vpath(volume))
        except FileNotFoundError:
            pass

    def create_snapshot(self, snapshot):
        self._copy(self._vpath(snapshot.volume), self._spath(snapshot))

    def delete_snapshot(self, snapshot):
        try:
            os.unlink(self._spath(snapshot))
        except FileNotFoundError:
            pass

    def create_volume_from_snapshot(self, volume, snapshot):
        self._copy(self._spath(snapshot), self._vpath(volume), volume.size)

    def create_cloned_volume(self, volume, src_vref):
        self._copy(self._vpath(src_vref), self._vpath(volume), volume.size)

    def extend_volume(self, volume, new_size):
        os.truncate(self._vpath(volume), int(new_size) * 1024 ** 3)

    def initialize_connection(self, volume, connector):
        return {'driver_volume_type': 'local',
                'data': {'device_path': self._vpath(volume)}}

    def initialize_connection_snapshot(self, snapshot, connector):
        return {'driver_volume_type': 'local',
                'data': {'device_path': self._spath(snapshot)}}

    def terminate_connection(self, volume, connector, **kwargs):
        pass

    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        pass

    def ensure_export(self, context, volume):
        pass

    def create_export(self, context, volume, connector):
        pass

    def remove_export(self, context, volume):
        pass

    def create_export_snapshot(self, context, snapshot, connector):
        pass

    def remove_export_snapshot(self, context, snapshot):
        pass

    def _update_volume_stats(self):
        self._stats = {
            'volume_backend_name': self.backend_name,
            'vendor_name': 'cinderpeer',
            'driver_version': self.VERSION,
            'storage_protocol': self.protocol,
            'pools': [{
                'pool_name': self.backend_name,
                'total_capacity_gb': 1000,
                'free_capacity_gb': 1000,
                'provisioned_capacity_gb': 0,
                'reserved_percentage': 0,
                'QoS_support': False,
                'multiattach': False,
                'thin_provisioning_support': True,
                'thick_provisioning_support': False,
                'max_over_subscription_ratio': 20.0,
            }]}
