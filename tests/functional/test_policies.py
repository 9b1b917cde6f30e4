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

"""Flatten policies, clone depth and concurrent uploads on the real cloud."""

import concurrent.futures
from unittest import mock

import rbd

from cinder_rbd_upload_clone import clone
from tests.functional import base


class FlattenPolicyTestCase(base.FunctionalTestCase):

    def assert_independent(self, volume, meta, sha):
        image_id = meta['id']
        self.assertEqual('active', self.image(image_id)['status'])
        self.assertIsNone(self.ceph.parent('images', image_id))
        self.assertEqual({'volumes/%s' % volume.name: [],
                          'images/%s' % image_id: ['snap']},
                         self.left_behind())
        self.assertEqual(sha, self.download_sha256(image_id))

    def upload_with_policy(self, policy, start_flatten=None):
        """Upload a new volume under ``clone_upload_flatten = policy``.

        ``start_flatten`` stands in for the driver's start of a background
        flatten; without it the flatten never starts, as when cinder-volume
        stops right after the upload.
        """
        self.override('clone_upload_flatten', policy)
        self.driver = self.make_driver()
        volume, sha = self.new_volume()
        meta = self.new_image()
        with mock.patch.object(self.driver, '_start_background_flatten',
                               side_effect=start_flatten):
            self.upload(volume, meta)
        return volume, sha, meta

    def test_sync(self):
        volume, sha, meta = self.upload_with_policy('sync')
        # Flattened and released before Glance was told: no parent, no
        # upload snapshot, nothing in the journal.
        self.assert_independent(volume, meta, sha)
        self.assertNotIn(meta['id'], self.journal())

    def test_background(self):
        threads = []

        def start(*args):
            threads.append(type(self.driver)._start_background_flatten(
                self.driver, *args))
        volume, sha, meta = self.upload_with_policy('background', start)
        self.assertEqual(1, len(threads))
        # Until the flatten is done the journal owes it.
        self.assertIn(meta['id'], self.journal())
        threads[0].join(60)
        self.assertFalse(threads[0].is_alive())
        self.assert_independent(volume, meta, sha)
        self.assertNotIn(meta['id'], self.journal())

    def test_background_volume_deleted_before_flatten(self):
        # The volume goes while the flatten has not run: the parent driver
        # keeps it hidden; the flatten then frees and removes it.
        volume, sha, meta = self.upload_with_policy('background')
        self.driver.delete_volume(volume)
        self.assertIn('volumes/%s.deleted' % volume.name,
                      self.ceph.inventory())
        self.driver._start_background_flatten(
            'images', meta['id'], volume.name).join(60)
        self.assertEqual({'images/%s' % meta['id']: ['snap']},
                         self.left_behind())
        self.assertIsNone(self.ceph.parent('images', meta['id']))
        self.assertEqual(sha, self.download_sha256(meta['id']))

    def test_background_restart_while_pending(self):
        # cinder-volume stops before the flatten ran: the journal owes
        # the flatten; the next driver's start-up sweep finishes it.
        volume, sha, meta = self.upload_with_policy('background')
        self.assertIn(meta['id'], self.journal())
        restarted = self.make_driver()
        counts = restarted.collect_upload_leftovers()
        self.assertEqual(1, counts['flattened'])
        self.assert_independent(volume, meta, sha)
        self.assertNotIn(meta['id'], self.journal())

    def test_background_no_room_defers(self):
        # A pool quota leaves less room than the flatten writes: the
        # flatten waits, the image stays a clone, the cluster stays
        # healthy; with room again the sweep finishes it.
        volume, sha, meta = self.upload_with_policy('background')
        self.ceph.set_pool_quota('images', 8 * base.MiB)
        self.addCleanup(self.ceph.set_pool_quota, 'images', 0)
        restarted = self.make_driver()
        self.assertEqual(0, restarted.collect_upload_leftovers()['flattened'])
        self.assertEqual('volumes', self.ceph.parent('images', meta['id'])[0])
        self.assertIn(meta['id'], self.journal())
        self.ceph.set_pool_quota('images', 0)
        self.assertEqual(1, restarted.collect_upload_leftovers()['flattened'])
        self.assert_independent(volume, meta, sha)


class CloneDepthTestCase(base.FunctionalTestCase):

    def chain(self, depth):
        """A volume that is a clone ``depth`` levels deep, and its sha."""
        name, sha = self.ceph.create_volume()
        self.addCleanup(self.ceph.remove, 'volumes', name)
        ioctx = self.ceph.ioctx['volumes']
        for level in range(depth):
            with rbd.Image(ioctx, name) as img:
                img.create_snap('chain')
                img.protect_snap('chain')
            child = '%s-%d' % (name, level)
            rbd.RBD().clone(ioctx, name, 'chain', ioctx, child,
                            features=int(self.ceph.cluster.conf_get(
                                'rbd_default_features')))
            self.addCleanup(self.ceph.remove, 'volumes', child)
            name = child
        return base.fake_volume(name), sha

    def upload_chain(self, max_depth):
        """Upload a volume 2 clones deep under rbd_max_clone_depth."""
        self.override('rbd_max_clone_depth', max_depth)
        self.driver = self.make_driver()
        volume, sha = self.chain(2)
        meta = self.new_image()
        self.upload(volume, meta)
        return volume, sha, meta

    def test_within_depth_is_a_clone(self):
        volume, sha, meta = self.upload_chain(3)
        self.assertEqual(('volumes', volume.name,
                          clone.upload_snap_name(meta['id'])),
                         self.ceph.parent('images', meta['id']))
        self.assertEqual(sha, self.download_sha256(meta['id']))

    def test_too_deep_is_flattened(self):
        volume, sha, meta = self.upload_chain(2)
        self.assertIsNone(self.ceph.parent('images', meta['id']))
        self.assertEqual([], self.ceph.inventory()['volumes/%s' %
                                                   volume.name])
        self.assertEqual(sha, self.download_sha256(meta['id']))


class ConcurrencyTestCase(base.FunctionalTestCase):

    def test_eight_uploads_of_one_volume_at_once(self):
        volume, sha = self.new_volume()
        metas = [self.new_image() for _i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda meta: self.upload(volume, meta), metas))
        for meta in metas:
            self.assertEqual('active', self.image(meta['id'])['status'])
            self.assertEqual(('volumes', volume.name,
                              clone.upload_snap_name(meta['id'])),
                             self.ceph.parent('images', meta['id']))
            self.assertEqual(sha, self.download_sha256(meta['id']))
        for meta in metas:
            self.glance.images.delete(meta['id'])
        self.driver.delete_volume(volume)
        self.assertEqual({}, self.left_behind())
