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

"""The decision: one branch per condition, each with its reason."""

from unittest import mock

import ddt
import testtools

from cinder_rbd_upload_clone import eligibility
from cinder_rbd_upload_clone import inspection
from cinder_rbd_upload_clone import stores
from tests.unit import base

RBD = stores.Store('ceph', 'rbd', 'images', 'fsid-a', True)


@ddt.ddt
class DecideTestCase(testtools.TestCase):

    def decide(self, enabled=True, meta=None, volume=None, store=RBD,
               fsid='fsid-a', quota=(True, 'within limits'),
               verdict=inspection.Verdict(True, 'content is raw', 'raw', 1,
                                          1)):
        def find_store(store_id):
            self.asked_store_id = store_id
            if isinstance(store, Exception):
                raise store
            return store

        def cluster_fsid():
            if isinstance(fsid, Exception):
                raise fsid
            return fsid

        def inspect(target):
            self.inspected = target
            return verdict
        self.asked_store_id = 'not asked'
        self.inspected = None
        return eligibility.decide(enabled, 'ceph-backend',
                                  meta or base.fake_image_meta(),
                                  volume or base.fake_volume(),
                                  find_store, cluster_fsid,
                                  quota=lambda: quota, inspect=inspect)

    def test_go(self):
        d = self.decide()
        self.assertTrue(d.go)
        self.assertEqual(RBD, d.store)
        self.assertIn("store 'ceph' is rbd pool 'images'", d.reason)
        self.assertIn('within limits', d.reason)
        self.assertIn('content is raw', d.reason)
        self.assertEqual(RBD, self.inspected)

    def test_over_quota_is_no_go_before_inspection(self):
        d = self.decide(quota=(False, 'image_size_total would pass'))
        self.assertFalse(d.go)
        self.assertEqual('image_size_total would pass', d.reason)
        self.assertIsNone(self.inspected)

    def test_content_glance_would_refuse_is_no_go(self):
        d = self.decide(verdict=inspection.Verdict(
            False, 'content detected as qcow2 failed Glance\'s safety '
            'checks: backing_file', 'qcow2', 0, 1))
        self.assertFalse(d.go)
        self.assertIn('backing_file', d.reason)

    def test_option_off_asks_nothing(self):
        d = self.decide(enabled=False)
        self.assertFalse(d.go)
        self.assertIn('enable_clone_optimization is off', d.reason)
        self.assertEqual('not asked', self.asked_store_id)

    @ddt.data(('qcow2', 'bare', "disk_format is 'qcow2'"),
              ('raw', 'ova', "container_format is 'ova'"),
              ('raw', 'compressed', "container_format is 'compressed'"),
              (None, 'bare', "disk_format is 'None'"))
    @ddt.unpack
    def test_formats(self, disk, container, words):
        d = self.decide(meta=base.fake_image_meta(disk, container))
        self.assertFalse(d.go)
        self.assertIn(words, d.reason)
        self.assertEqual('not asked', self.asked_store_id)

    def test_encrypted(self):
        d = self.decide(volume=base.fake_volume(encrypted=True))
        self.assertFalse(d.go)
        self.assertIn('encrypted', d.reason)

    def test_volume_type_store_id(self):
        self.decide(volume=base.fake_volume(store_id='fast'))
        self.assertEqual('fast', self.asked_store_id)

    def test_no_volume_type(self):
        vol = base.fake_volume()
        vol.volume_type_id = None
        self.assertTrue(self.decide(volume=vol).go)
        self.assertIsNone(self.asked_store_id)

    def test_store_lookup_error(self):
        d = self.decide(store=stores.StoreLookupError('Glance is down'))
        self.assertFalse(d.go)
        self.assertEqual('Glance is down', d.reason)

    @ddt.data((RBD._replace(type='file'), "of type 'file', not 'rbd'"),
              (RBD._replace(pool=None), 'reports no pool'),
              (RBD._replace(fsid=None), 'reports no Ceph fsid'),
              (RBD._replace(fsid='fsid-b'),
               "store 'ceph' is on cluster fsid-b, volumes of backend "
               "'ceph-backend' are on cluster fsid-a"))
    @ddt.unpack
    def test_store_conditions(self, store, words):
        d = self.decide(store=store)
        self.assertFalse(d.go)
        self.assertIn(words, d.reason)

    def test_fsid_unreadable(self):
        d = self.decide(fsid=RuntimeError('timed out'))
        self.assertFalse(d.go)
        self.assertIn('timed out', d.reason)

    def test_reason_is_one_line(self):
        for d in (self.decide(enabled=False),
                  self.decide(store=RBD._replace(fsid='x')),
                  self.decide()):
            self.assertNotIn('\n', d.reason)

    def test_volume_type_not_loaded(self):
        vol = mock.Mock(encryption_key_id=None, volume_type_id='t',
                        volume_type=None)
        self.assertTrue(self.decide(volume=vol).go)

    def test_signed_image_is_no_go(self):
        meta = base.fake_image_meta()
        meta['properties'] = {'img_signature': 'x',
                              'img_signature_hash_method': 'SHA-256'}
        d = self.decide(meta=meta)
        self.assertFalse(d.go)
        self.assertIn('img_signature, img_signature_hash_method', d.reason)
        self.assertEqual('not asked', self.asked_store_id)
