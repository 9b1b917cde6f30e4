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

"""Glance failing at each call of the clone path, on the real cloud.

The driver talks to the real glance-api through :mod:`glance_proxy`, which
answers one kind of request with an error (or drops the connection) as a
failing Glance would. After each fault the volume's bytes are unchanged,
the image is active through the generic copy (or the upload fails as it
would upstream when Glance is down), and nothing is left in either pool.
"""

import gc

import ddt

from cinder import exception

from tests.functional import base
from tests.functional import glance_proxy

STORES = r'^/v2/info/stores/detail'
LOCATIONS = r'^/v2/images/[^/]+/locations$'
IMAGE = r'^/v2/images/[^/?]+$'


@ddt.ddt
class GlanceFaultTestCase(base.FunctionalTestCase):

    def setUp(self):
        super(GlanceFaultTestCase, self).setUp()
        self.proxy = glance_proxy.ProxyProcess(
            base.CONF.glance_api_servers[0])
        self.addCleanup(self.proxy.stop)
        # Fail fast: no retry loops on a Glance that is down on purpose.
        for name, value in (('glance_api_servers', [self.proxy.url]),
                            ('glance_num_retries', 0)):
            base.CONF.set_override(name, value)
            self.addCleanup(base.CONF.clear_override, name)

    def assert_generic_image(self, image_id, sha):
        image = self.image(image_id)
        self.assertEqual('active', image['status'])
        self.assertIsNone(self.ceph.parent('images', image_id))
        self.assertEqual(sha, self.download_sha256(image_id))

    def upload_with_fault(self, method, path, action):
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.proxy.fail(method, path, action)
        self.upload(volume, meta)
        self.assertTrue(self.proxy.hits, 'the fault was never injected')
        self.assertEqual(sha, self.ceph.sha256('volumes', volume.name))
        return volume, sha, meta

    @ddt.data(500, 503, 403, glance_proxy.DROP)
    def test_store_discovery_fails(self, action):
        volume, sha, meta = self.upload_with_fault('GET', STORES, action)
        self.assert_generic_image(meta['id'], sha)
        self.assertEqual({'volumes/%s' % volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.left_behind())

    @ddt.data(403, 500, glance_proxy.DROP)
    def test_location_registration_fails(self, action):
        volume, sha, meta = self.upload_with_fault('POST', LOCATIONS,
                                                   action)
        self.assert_generic_image(meta['id'], sha)
        # The clone and the upload snapshot were removed before the copy.
        self.assertEqual({'volumes/%s' % volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.left_behind())

    @ddt.data(500, glance_proxy.DROP)
    def test_status_reads_fail_then_recover(self, action):
        # Glance took the location; reading the image fails a few times:
        # the clone stays and the upload completes as a clone.
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.proxy.fail('GET', IMAGE, action, times=3)
        self.upload(volume, meta)
        self.assertEqual(3, len(self.proxy.hits))
        self.assertEqual('active', self.image(meta['id'])['status'])
        self.assertEqual('volumes',
                         self.ceph.parent('images', meta['id'])[0])
        self.assertEqual(sha, self.download_sha256(meta['id']))
        self.glance.images.delete(meta['id'])
        self.driver.delete_volume(volume)
        self.assertEqual({}, self.left_behind())

    def test_glance_down(self):
        # Glance unreachable for everything: no clone is attempted, the
        # generic copy fails as upstream's does (the manager then marks
        # the upload failed); the volume is untouched, nothing is left.
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.proxy.fail('*', r'.', glance_proxy.DROP)
        try:
            self.upload(volume, meta)
        except exception.GlanceConnectionFailed:
            pass    # the traceback (and the frames it holds) goes here
        else:
            self.fail('the upload succeeded with Glance down')
        gc.collect()
        self.assertEqual(sha, self.ceph.sha256('volumes', volume.name))
        self.assertEqual('queued', self.image(meta['id'])['status'])
        self.assertEqual({'volumes/%s' % volume.name: []},
                         self.left_behind())
