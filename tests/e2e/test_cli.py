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

"""upload-to-image through the real CLIs, both paths, and what follows."""

from cinder_rbd_upload_clone import clone
from tests.e2e import base


class UploadCLITestCase(base.E2ETestCase):

    def test_clone_upload_download_and_volume_from_image(self):
        vol = self.create_volume('e2e-clone-src')
        sha = self.write_volume(vol['id'])
        image = self.upload(vol['id'], 'e2e-clone-image')
        image_id = image['id']
        self.assertEqual('raw', image['disk_format'])
        self.assertEqual(base.GiB, image['size'])

        # Laid out in Ceph as Glance's rbd store would, parented on the
        # volume's upload snapshot; registered with Glance's own URL form.
        self.assertEqual(
            ('volumes', 'volume-%s' % vol['id'],
             clone.upload_snap_name(image_id)),
            self.ceph.parent('images', image_id))
        self.assertEqual(['rbd://%s/images/%s/snap' % (self.fsid(),
                                                       image_id)],
                         self.image_locations(image_id))
        self.assertTrue(self.wait_hash(image_id)['os_hash_value'])
        self.assertEqual(sha, self.download_sha256(image_id))

        # A volume made from the image is a COW clone of it again (a copy
        # where Cinder cannot see the image's location: NO_IMAGE_CLONES).
        copy = self.create_volume('e2e-from-image', image=image_id)
        self.assertEqual(('images', image_id, 'snap')
                         if base.CINDER_CLONES_IMAGES else None,
                         self.ceph.parent('volumes',
                                          'volume-%s' % copy['id']))
        self.assertEqual(sha, self.ceph.sha256('volumes',
                                               'volume-%s' % copy['id']))

        self.delete_volume(copy['id'])
        self.delete_image(image_id)
        self.delete_volume(vol['id'])
        self.assert_no_leaks()

    def test_generic_backend_copies(self):
        vol = self.create_volume('e2e-generic-src', volume_type='generic')
        sha = self.write_volume(vol['id'])
        image = self.upload(vol['id'], 'e2e-generic-image')
        self.assertIsNone(self.ceph.parent('images', image['id']))
        self.assertEqual(sha, self.download_sha256(image['id']))
        self.delete_image(image['id'])
        self.delete_volume(vol['id'])
        self.assert_no_leaks()

    def test_qcow2_takes_generic_path(self):
        vol = self.create_volume('e2e-qcow2-src')
        self.write_volume(vol['id'])
        image = self.upload(vol['id'], 'e2e-qcow2-image',
                            disk_format='qcow2')
        self.assertEqual('qcow2', image['disk_format'])
        self.assertIsNone(self.ceph.parent('images', image['id']))
        self.delete_image(image['id'])
        self.delete_volume(vol['id'])
        self.assert_no_leaks()

    def test_delete_volume_first(self):
        vol = self.create_volume('e2e-volume-first')
        sha = self.write_volume(vol['id'])
        image = self.upload(vol['id'], 'e2e-volume-first-image')
        self.delete_volume(vol['id'])
        # Hidden from Cinder, kept in Ceph while the image needs it.
        self.assertIn('volumes/volume-%s.deleted' % vol['id'],
                      self.ceph.inventory())
        self.assertEqual(sha, self.download_sha256(image['id']))
        self.delete_image(image['id'])
        self.assert_no_leaks()
        self.assertNotIn('volumes/volume-%s.deleted' % vol['id'],
                         self.ceph.inventory())

    def test_delete_image_first(self):
        vol = self.create_volume('e2e-image-first')
        self.write_volume(vol['id'])
        image = self.upload(vol['id'], 'e2e-image-first-image')
        self.delete_image(image['id'])
        self.delete_volume(vol['id'])
        inventory = self.ceph.inventory()
        self.assertNotIn('volumes/volume-%s' % vol['id'], inventory)
        self.assertNotIn('volumes/volume-%s.deleted' % vol['id'], inventory)
        self.assert_no_leaks()

    def test_image_with_volume_child_refuses_delete(self):
        if not base.CINDER_CLONES_IMAGES:
            self.skipTest(base.NO_IMAGE_CLONES)
        vol = self.create_volume('e2e-child')
        self.write_volume(vol['id'])
        image = self.upload(vol['id'], 'e2e-child-image')
        copy = self.create_volume('e2e-child-copy', image=image['id'])
        # As for any Glance rbd image with clones: 409, image stays.
        self.assertRaises(base.CLIError, self.delete_image, image['id'])
        self.assertEqual('active',
                         base.openstack('image', 'show',
                                        image['id'])['status'])
        self.delete_volume(copy['id'])
        self.delete_image(image['id'])
        self.delete_volume(vol['id'])
        self.assert_no_leaks()
