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

"""Clone upload and its fallbacks on the real cluster and real Glance."""

import os
import shutil
from unittest import mock

import ddt
import rbd

from cinder import exception

from cinder_rbd_upload_clone import clone
from cinder_rbd_upload_clone import location
from tests.functional import base


@ddt.ddt
class UploadTestCase(base.FunctionalTestCase):

    def assert_generic_image(self, image_id, volume_sha):
        """The image was written by Glance itself, with the volume's bytes."""
        image = self.image(image_id)
        self.assertEqual('active', image['status'])
        self.assertEqual(volume_sha, self.download_sha256(image_id))
        self.assertIsNone(self.ceph.parent('images', image_id))

    def test_clone_upload(self):
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.upload(volume, meta)
        image_id = meta['id']

        image = self.image(image_id)
        self.assertEqual('active', image['status'])
        self.assertEqual(64 * base.MiB, image['size'])
        snap = clone.upload_snap_name(image_id)
        # Laid out as Glance's rbd store would: named by id, @snap.
        self.assertEqual(('volumes', volume.name, snap),
                         self.ceph.parent('images', image_id))
        self.assertEqual(['snap'],
                         self.ceph.inventory()['images/%s' % image_id])
        self.assertEqual(sha, self.download_sha256(image_id))
        self.assertEqual(sha, self.ceph.sha256('volumes', volume.name))
        image = self.wait_hash(image_id)
        self.assertEqual('sha512', image['os_hash_algo'])
        self.assertTrue(image['checksum'])

        # Delete the image, then the volume: nothing is left.
        self.glance.images.delete(image_id)
        self.driver.delete_volume(volume)
        self.assertEqual({}, self.left_behind())

    def test_volume_bytes_unchanged(self):
        volume, sha = self.new_volume()
        self.upload(volume, self.new_image())
        self.assertEqual(sha, self.ceph.sha256('volumes', volume.name))

    @ddt.data('_create_snapshot', '_protect_snapshot', '_clone',
              '_mark_pending', '_create_image_snapshot',
              '_protect_image_snapshot')
    def test_failure_at_rbd_step_falls_back(self, step):
        volume, sha = self.new_volume()
        meta = self.new_image()
        with mock.patch.object(clone.UploadClone, step, autospec=True,
                               side_effect=rbd.PermissionError('injected')):
            self.upload(volume, meta)
        self.assert_generic_image(meta['id'], sha)
        self.assertEqual([], self.ceph.inventory()['volumes/%s' %
                                                   volume.name])
        self.assertEqual({'volumes/%s' % volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.left_behind())

    def test_failure_after_step_falls_back(self):
        # The step succeeds, then something after it fails: what the
        # step made must be undone too.
        volume, sha = self.new_volume()
        meta = self.new_image()
        with mock.patch.object(location, 'register',
                               side_effect=location.LocationError('inj')):
            self.upload(volume, meta)
        self.assert_generic_image(meta['id'], sha)
        self.assertEqual({'volumes/%s' % volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.left_behind())

    def test_glance_refuses_location(self):
        # Without the service token Glance refuses the location API for
        # a normal user; the service credentials path is disabled too.
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.override('send_service_user_token', False, group='service_user')
        with mock.patch.object(location, '_attempts',
                               return_value=[('user token only', False)]):
            self.upload(volume, meta)
        self.assert_generic_image(meta['id'], sha)
        self.assertNotIn(meta['id'], str(self.left_behind(
            ['volumes/%s' % volume.name, 'images/%s' % meta['id']])))

    def test_permission_denied_on_images_pool_falls_back(self):
        # A real cephx user that may write volumes but only read images.
        user = 'cinder-ro-functional'
        keyring = base.limited_cinder_user(self, user)
        # os-brick (the generic path) looks for keyrings in /etc/ceph.
        etc = '/etc/ceph/ceph.client.%s.keyring' % user
        shutil.copy(keyring, etc)
        self.addCleanup(os.unlink, etc)
        self.override('rbd_user', user)
        self.driver = self.make_driver()

        volume, sha = self.new_volume()
        meta = self.new_image()
        self.upload(volume, meta)
        self.assert_generic_image(meta['id'], sha)
        self.assertEqual({'volumes/%s' % volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.left_behind())

    def test_option_off_takes_generic_path(self):
        self.override('enable_clone_optimization', False)
        self.driver = self.make_driver()
        volume, sha = self.new_volume()
        meta = self.new_image()
        self.upload(volume, meta)
        self.assert_generic_image(meta['id'], sha)

    def test_killed_between_clone_and_mark(self):
        # cinder-volume dies in the one call between the clone and its
        # pending mark: the clone carries no mark. A sweep past the grace
        # (the start-up sweep of the restarted driver) still removes it.
        volume, sha = self.new_volume()
        meta = self.new_image()
        with mock.patch.object(clone.UploadClone, '_mark_pending',
                               side_effect=SystemExit('killed')):
            self.assertRaises(SystemExit, self.upload, volume, meta)
        self.assertIn('images/%s' % meta['id'], self.ceph.inventory())
        self.override('clone_upload_gc_grace', 0)
        restarted = self.make_driver()
        self.assertEqual(1, restarted.collect_upload_leftovers(
            startup=True)['clones'])
        self.assertEqual({'volumes/%s' % volume.name:
                          [clone.upload_snap_name(meta['id'])]},
                         self.left_behind())
        self.assertEqual(sha, self.ceph.sha256('volumes', volume.name))
        restarted.delete_volume(volume)
        self.assertEqual({}, self.left_behind())

    def test_deleted_image_during_upload(self):
        volume, _sha = self.new_volume()
        meta = self.new_image()
        real_register = location.register

        def delete_then_register(context, image_id, url, allow_legacy):
            self.glance.images.delete(image_id)
            return real_register(context, image_id, url, allow_legacy)

        with mock.patch.object(location, 'register',
                               side_effect=delete_then_register):
            self.assertRaises(exception.ImageNotFound, self.upload, volume,
                              meta)
        self.assertEqual({'volumes/%s' % volume.name: []},
                         self.left_behind())
