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
from cinder_rbd_upload_clone import mixin
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
        # Glance hashed the clone itself: its hash is the volume's bytes'.
        image = self.wait_hash(image_id)
        self.assertEqual(
            ('sha512', self.ceph.digest('volumes', volume.name, 'sha512'),
             self.ceph.digest('volumes', volume.name, 'md5')),
            (image['os_hash_algo'], image['os_hash_value'],
             image['checksum']))
        self.assertNotIn(meta['id'], self.journal())

        # Delete the image, then the volume: nothing is left.
        self.glance.images.delete(image_id)
        self.driver.delete_volume(volume)
        self.assertEqual({}, self.left_behind())

    def test_volume_bytes_unchanged(self):
        volume, sha = self.new_volume()
        self.upload(volume, self.new_image())
        self.assertEqual(sha, self.ceph.sha256('volumes', volume.name))

    @ddt.data(('_create_snapshot', 'snapshot volume'),
              ('_protect_snapshot', 'protect volume snapshot'),
              ('_clone', 'clone into images'),
              ('_create_image_snapshot', 'snapshot clone'),
              ('_protect_image_snapshot', 'protect clone snapshot'))
    @ddt.unpack
    def test_failure_at_rbd_step_falls_back(self, method, step):
        volume, sha = self.new_volume()
        meta = self.new_image()
        with mock.patch.object(clone.UploadClone, method, autospec=True,
                               side_effect=rbd.PermissionError('injected')):
            line = self.upload_logged(volume, meta)
        self.assert_fell_back_at(line, step)
        self.assert_generic_image(meta['id'], sha)
        self.assertNotIn(meta['id'], self.journal())
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
            line = self.upload_logged(volume, meta)
        self.assert_fell_back_at(line, 'register location')
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
            line = self.upload_logged(volume, meta)
        self.assert_fell_back_at(line, 'register location')
        self.assertIn('403', line['reason'])
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
        line = self.upload_logged(volume, meta)
        self.assert_fell_back_at(line, 'clone into images')
        self.assertIn('PermissionError', line['reason'])
        self.assert_generic_image(meta['id'], sha)
        self.assertEqual({'volumes/%s' % volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.left_behind())

    def test_option_off_takes_generic_path(self):
        self.override('enable_clone_optimization', False)
        self.driver = self.make_driver()
        volume, sha = self.new_volume()
        meta = self.new_image()
        # Exactly upstream: not even the driver's log line.
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload(volume, meta)
        info.assert_not_called()
        self.assert_generic_image(meta['id'], sha)

    def test_killed_between_clone_and_its_snapshot(self):
        # cinder-volume dies right after the clone, before Glance's
        # snapshot on it: the journal knows the upload; the restarted
        # driver's first sweep removes the clone (its image is queued,
        # without a location) and releases the upload snapshot.
        volume, sha = self.new_volume()
        meta = self.new_image()
        with mock.patch.object(clone.UploadClone, '_create_image_snapshot',
                               side_effect=SystemExit('killed')):
            self.assertRaises(SystemExit, self.upload, volume, meta)
        self.assertEqual([], self.ceph.inventory()['images/%s' % meta['id']])
        self.assertIn(meta['id'], self.journal())
        restarted = self.make_driver()
        self.assertEqual(1, restarted.collect_upload_leftovers()['clones'])
        self.assertEqual({'volumes/%s' % volume.name: []},
                         self.left_behind())
        self.assertNotIn(meta['id'], self.journal())
        self.assertEqual(sha, self.ceph.sha256('volumes', volume.name))

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
