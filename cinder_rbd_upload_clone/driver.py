"""The ready driver class operators name in ``volume_driver``."""

from cinder import interface
from cinder.volume.drivers import rbd

from cinder_rbd_upload_clone import mixin


@interface.volumedriver
class RBDUploadCloneDriver(mixin.UploadCloneMixin, rbd.RBDDriver):
    """Cinder's RBD driver with copy-on-write upload to Glance rbd stores.

    ``volume_driver =
    cinder_rbd_upload_clone.driver.RBDUploadCloneDriver`` in a backend
    section, plus ``enable_clone_optimization = True`` to turn it on.
    """
