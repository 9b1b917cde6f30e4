# Copyright 2026 cinder-rbd-upload-clone developers
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The ready driver class operators name in ``volume_driver``."""

from cinder import interface
from cinder.volume.drivers import rbd

from cinder_rbd_upload_clone import mixin
from cinder_rbd_upload_clone import version


@interface.volumedriver
class RBDUploadCloneDriver(mixin.UploadCloneMixin, rbd.RBDDriver):
    """Cinder's RBD driver with copy-on-write upload to Glance rbd stores.

    ``volume_driver =
    cinder_rbd_upload_clone.driver.RBDUploadCloneDriver`` in a backend
    section, plus ``enable_clone_optimization = True`` to turn it on.
    """

    # The stats' driver_version (cinder get-capabilities, get-pools) is this
    # package's version; the RBD driver it extends is the one of the
    # installed Cinder release, reported as rbd_driver_version.
    VERSION = version.release_string()
    RBD_VERSION = rbd.RBDDriver.VERSION

    def _update_volume_stats(self):
        super(RBDUploadCloneDriver, self)._update_volume_stats()
        self._stats['rbd_driver_version'] = self.RBD_VERSION
