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

"""Shared fixtures: a driver on a fake cluster, a fake volume and image."""

from unittest import mock
import uuid

import testtools

from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import driver as our_driver
from cinder_rbd_upload_clone import glance_service
from cinder_rbd_upload_clone import options
from cinder_rbd_upload_clone import stores
from tests.unit import fake_ceph

STORE_DETAIL = {'stores': [
    {'id': 'ceph', 'type': 'rbd', 'default': 'true',
     'properties': {'pool': 'images', 'fsid': 'fsid-volumes',
                    'chunk_size': 8388608, 'thin_provisioning': False}},
    {'id': 'files', 'type': 'file',
     'properties': {'data_dir': '/var/lib/glance/images'}},
]}


class FakeConfiguration(object):
    """The driver's configuration: RBD defaults plus ours, overridable."""

    def __init__(self, **overrides):
        for opt in rbd_driver.RBD_OPTS + options.upload_clone_opts:
            setattr(self, opt.dest, opt.default)
        self.volume_backend_name = 'ceph'
        self.rbd_pool = 'volumes'
        self.rbd_user = 'cinder'
        self.rbd_ceph_conf = '/etc/ceph/ceph.conf'
        self.rados_connect_timeout = -1
        self.rados_connection_interval = 0
        self.rados_connection_retries = 1
        self.reserved_percentage = 0
        self.max_over_subscription_ratio = 20.0
        self.enable_clone_optimization = True
        self.image_upload_use_cinder_backend = False
        for key, value in overrides.items():
            setattr(self, key, value)

    def append_config_values(self, opts):
        pass

    def safe_get(self, name):
        return getattr(self, name, None)


def fake_volume(name=None, encrypted=False, store_id=None):
    vol_id = str(uuid.uuid4())
    vtype = mock.Mock(extra_specs={})
    if store_id:
        vtype.extra_specs[stores.STORE_ID_SPEC] = store_id
    volume = mock.Mock(id=vol_id, name_id=vol_id,
                       encryption_key_id='key' if encrypted else None,
                       volume_type_id='type-id', volume_type=vtype, size=1)
    volume.name = name or 'volume-%s' % vol_id   # Mock(name=) is its repr
    return volume


def fake_image_meta(disk_format='raw', container_format='bare'):
    return {'id': str(uuid.uuid4()), 'disk_format': disk_format,
            'container_format': container_format}


class DriverTestCase(testtools.TestCase):
    """A driver on a fake cluster with one volume, Glance mocked."""

    def setUp(self):
        super(DriverTestCase, self).setUp()
        self.cluster = fake_ceph.Cluster()
        self.volume = fake_volume()
        self.cluster.add_image('volumes', self.volume.name)
        self.configuration = FakeConfiguration()
        self.driver = our_driver.RBDUploadCloneDriver(
            configuration=self.configuration,
            rados=self.cluster.rados_module(),
            rbd=self.cluster.rbd_module())
        self.driver._active_config = {
            'name': 'ceph', 'conf': '/etc/ceph/ceph.conf', 'user': 'cinder',
            'secret_uuid': None}
        self.context = mock.Mock(name='context')

        # Glance: one client mock for every GlanceClientWrapper.
        self.glance = mock.Mock(name='GlanceClientWrapper()')
        self.glance_calls = {
            'get_stores_info_detail': lambda: STORE_DETAIL,
            'add_image_location': lambda *a: None,
            'get': lambda image_id: {'id': image_id, 'status': 'active'},
            'get_usage': lambda: {},
            'get_image_locations': lambda image_id: [],
        }

        def call(context, method, *args, **kwargs):
            handler = self.glance_calls[method]
            if isinstance(handler, Exception):
                raise handler
            return handler(*args)
        self.glance.call.side_effect = call
        patcher = mock.patch('cinder_rbd_upload_clone.glance_client.wrapper',
                             return_value=self.glance)
        patcher.start()
        self.addCleanup(patcher.stop)
        # Cinder's [glance] service user: an admin, Glance in the catalog.
        for name, value in (('service_context', mock.Mock(name='admin')),
                            ('sees_all_images', (True, 'admin'))):
            patcher = mock.patch.object(glance_service, name,
                                        return_value=value)
            patcher.start()
            self.addCleanup(patcher.stop)

        # Cinder's database: it knows every volume.
        patcher = mock.patch('cinder.objects.VolumeList.get_all',
                             return_value=[mock.sentinel.volume])
        patcher.start()
        self.addCleanup(patcher.stop)

        # The generic path: record the call only.
        parent = mock.patch.object(rbd_driver.RBDDriver,
                                   'copy_volume_to_image')
        self.generic_upload = parent.start()
        self.addCleanup(parent.stop)

    def upload(self, image_meta=None, volume=None):
        image_meta = image_meta or fake_image_meta()
        self.driver.copy_volume_to_image(self.context,
                                         volume or self.volume,
                                         mock.sentinel.image_service,
                                         image_meta)
        return image_meta

    def glance_methods(self):
        return [c[0][1] for c in self.glance.call.call_args_list]

    def assertOnlyVolumeLeft(self):
        self.assertEqual({'volumes/%s' % self.volume.name: []},
                         self.cluster.inventory())
