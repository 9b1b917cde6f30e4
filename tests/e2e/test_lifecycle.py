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

"""Lifecycle through the real CLIs: repeats, concurrency, chains, crashes.

Each test ends with tools/leak-check finding nothing. Image bytes are
checked against Glance's own ``os_hash_value`` (sha512), which Glance
computes by reading the clone through its rbd store.
"""

import concurrent.futures
import glob
import os

import rbd
import testtools
import testtools.content

from cinder_rbd_upload_clone import clone
from tests.e2e import base


class LifecycleTestCase(base.E2ETestCase):

    def assert_clone_of(self, image_id, vol_id, sha512):
        self.assertEqual(('volumes', 'volume-%s' % vol_id,
                          clone.upload_snap_name(image_id)),
                         self.ceph.parent('images', image_id))
        self.assertEqual(sha512, self.wait_hash(image_id)['os_hash_value'])

    def test_same_volume_three_times(self):
        vol = self.create_volume('e2e-thrice')
        self.write_volume(vol['id'])
        sha512 = self.volume_sha512(vol['id'])
        images = [self.upload(vol['id'], 'e2e-thrice-%d' % i)['id']
                  for i in range(3)]
        for image_id in images:
            self.assert_clone_of(image_id, vol['id'], sha512)
        self.assertEqual(
            sorted(clone.upload_snap_name(i) for i in images),
            self.ceph.inventory()['volumes/volume-%s' % vol['id']])
        # Volume first (kept hidden while images need it), then images.
        self.delete_volume(vol['id'])
        for image_id in images:
            self.delete_image(image_id)
        self.assert_no_leaks()

    def test_eight_uploads_at_once(self):
        # Cinder's API refuses a second upload of a volume while it is
        # 'uploading', so concurrent uploads come from different volumes
        # (concurrent uploads of one volume: tests/functional). Set-up and
        # tear-down run in parallel too, only to save time.
        def prepare(i):
            vol_id = self.create_volume('e2e-many-%d' % i)['id']
            self.write_volume(vol_id, size=16 * base.MiB)
            return vol_id, self.volume_sha512(vol_id)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            sums = dict(pool.map(prepare, range(8)))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            images = dict(zip(sums, pool.map(
                lambda v: self.upload(v, 'e2e-many-%s' % v)['id'], sums)))
        for vol_id, image_id in images.items():
            self.assert_clone_of(image_id, vol_id, sums[vol_id])

        def remove(vol_id):
            self.delete_image(images[vol_id])
            self.delete_volume(vol_id)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(remove, images))
        self.assert_no_leaks()

    def test_upload_of_volume_made_from_uploaded_image(self):
        # volume A -> image 1 -> volume B (COW) -> image 2 (COW of B):
        # a chain of four RBD images across both pools.
        if not base.CINDER_CLONES_IMAGES:
            self.skipTest(base.NO_IMAGE_CLONES)
        vol_a = self.create_volume('e2e-chain-a')
        self.write_volume(vol_a['id'])
        sha512 = self.volume_sha512(vol_a['id'])
        image1 = self.upload(vol_a['id'], 'e2e-chain-1')['id']
        vol_b = self.create_volume('e2e-chain-b', image=image1)
        self.assertEqual(('images', image1, 'snap'),
                         self.ceph.parent('volumes',
                                          'volume-%s' % vol_b['id']))
        image2 = self.upload(vol_b['id'], 'e2e-chain-2')['id']
        self.assert_clone_of(image2, vol_b['id'], sha512)

        # Unwind in the most awkward order. B goes first: kept hidden
        # while image 2 needs it, so image 1 still has a child (409).
        self.delete_volume(vol_b['id'])
        self.assertRaises(base.CLIError, self.delete_image, image1)
        self.delete_image(image2)
        # The collector drops B's upload snapshot and hidden B; then image
        # 1 has no child left and deletes.
        base.wait_for('image 1 deletable', lambda: (
            self._try_delete_image(image1), None), 120, interval=3)
        self.delete_volume(vol_a['id'])
        self.assert_no_leaks()

    def _try_delete_image(self, image_id):
        try:
            self.delete_image(image_id)
            return True
        except base.CLIError:
            return False

    def test_cinder_volume_killed_mid_upload(self):
        vol = self.create_volume('e2e-crash')
        self.write_volume(vol['id'])
        sha512 = self.volume_sha512(vol['id'])

        # Freeze cinder-volume as soon as the clone exists while the
        # journal holds the upload: it is between its clone and Glance
        # serving it.
        image_id, marks, _ = self.freeze_upload_at(
            vol['id'], 'e2e-crash-image', 'pending')
        base.crash_cinder_volume()
        self.addCleanup(base.restart_cinder_volume)
        crashed = self.ceph.inventory()
        self.addDetail('after crash', testtools.content.text_content(
            '%s\n%s' % (crashed, marks)))
        self.assertIn('images/%s' % image_id, crashed)
        base.restart_cinder_volume()

        # The collector's start-up sweep finishes the upload's leftovers:
        # the clone goes unless Glance had already taken it. The volume
        # stays 'uploading', as upstream leaves it after a crash: the
        # operator resets it.
        self.reset_if_uploading(vol['id'])

        def settled():
            status = self.glance.images.get(image_id)['status']
            record = self.ceph.journal().get(image_id)
            present = image_id in set(rbd.RBD().list(
                self.ceph.ioctx['images']))
            if status == 'active':
                return present and record is None, status
            return not present and record is None, (status, record)
        base.wait_for('clone collected or image served', settled, 120, 1)
        if self.glance.images.get(image_id)['status'] == 'active':
            self.assert_clone_of(image_id, vol['id'], sha512)
        self.assertEqual(sha512, self.volume_sha512(vol['id']))
        self.delete_image(image_id)
        self.delete_volume(vol['id'])
        self.assert_no_leaks()

    def test_background_flatten_survives_cinder_volume_crash(self):
        # Backend rbd-flatten: clone_upload_flatten = background.
        vol = self.create_volume('e2e-flatten', volume_type='clone-flatten')
        self.write_volume(vol['id'], size=1024 * base.MiB)
        sha512 = self.volume_sha512(vol['id'])
        # Crash while the flatten is owed (journal state 'flatten'): Glance
        # serves the clone and the flatten runs or is about to.
        image_id, record, parent = self.freeze_upload_at(
            vol['id'], 'e2e-flatten-image', 'flatten')
        base.crash_cinder_volume()
        self.addCleanup(base.restart_cinder_volume)
        self.assertIsNotNone(parent)
        base.restart_cinder_volume()
        self.reset_if_uploading(vol['id'])

        # The restarted collector finds the flatten owed in the journal.
        # If the crash interrupted it (the dead writer still holds the
        # clone's exclusive lock) it is not resumed: Ceph 16's librbd
        # would leave the objects in flight empty. The image stays a
        # clone of its upload snapshot. Otherwise the collector finishes
        # it and drops the volume's upload snapshot.
        def settled():
            record = self.ceph.journal().get(image_id)
            snaps = self.ceph.inventory()['volumes/volume-%s' % vol['id']]
            parent = self.ceph.parent('images', image_id)
            flattened = parent is None and not snaps
            kept = parent is not None and snaps == [
                clone.upload_snap_name(image_id)]
            return record is None and (flattened or kept), (record, snaps)
        base.wait_for('flatten settled', settled, 300, 2)
        self.assertEqual('active',
                         self.glance.images.get(image_id)['status'])
        self.assertEqual(sha512, self.wait_hash(image_id)['os_hash_value'])
        # The bytes Glance serves now, after the flatten or without it.
        self.assertEqual(self.ceph.sha256('volumes', 'volume-%s' % vol['id']),
                         self.download_sha256(image_id))
        self.delete_volume(vol['id'])
        self.delete_image(image_id)
        self.assert_no_leaks()

    @staticmethod
    def collector_reclaimed(name):
        """Whether a cinder-volume log says the collector reclaimed name."""
        line = 'Reclaiming hidden volume %s:' % name
        logs = os.path.join(base.cloudlib.CLOUD, 'logs')
        for log in glob.glob(os.path.join(logs, 'cinder-volume*.log')):
            with open(log, errors='replace') as f:
                if any(line in x for x in f):
                    return True
        return False

    def hidden_source_after_deletes(self, volume_type):
        """Source deleted first, then its Cinder clone: what is left."""
        src = self.create_volume('e2e-src-%s' % volume_type,
                                 volume_type=volume_type)
        self.write_volume(src['id'])
        dst = base.openstack('volume', 'create', '--source', src['id'],
                             '--type', volume_type,
                             'e2e-dst-%s' % volume_type)
        self.addCleanup(self.delete_volume_quietly, dst['id'])
        self.wait_volume(dst['id'], 'available')
        self.delete_volume(src['id'])
        hidden = 'volumes/volume-%s.deleted' % src['id']
        self.assertIn(hidden, self.ceph.inventory())
        self.delete_volume(dst['id'])
        return hidden

    def test_deleted_source_of_a_clone_is_not_left_hidden(self):
        # Issue 19: with the upstream driver (the generic type: the option
        # off) the hidden source keeps the clone's snapshot for ever;
        # with the option on it goes when the clone does.
        hidden = self.hidden_source_after_deletes('generic')
        self.addCleanup(self.ceph.remove, 'volumes', hidden[8:])
        left = self.ceph.inventory().get(hidden)
        # The clone backends share the volumes pool, and their collector
        # (every 5 s here) may reclaim upstream's leftover before we look:
        # then its log line names it. Either way upstream left it.
        reclaimed = self.collector_reclaimed(hidden[len('volumes/'):])
        self.assertTrue(left is not None or reclaimed,
                        'upstream no longer leaves it')
        if left is not None:
            self.assertEqual(1, len(left))
        self.ceph.remove('volumes', hidden[len('volumes/'):])

        hidden = self.hidden_source_after_deletes('clone')
        self.assertNotIn(hidden, self.ceph.inventory())
        self.assert_no_leaks()
