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

"""Lifecycle on the fake cluster: both delete orders, sweeps, crashes."""

import time
from unittest import mock

from cinder_rbd_upload_clone import clone
from cinder_rbd_upload_clone import collector
from cinder_rbd_upload_clone import location
from tests.unit import base


class CollectorTestCase(base.DriverTestCase):

    def setUp(self):
        super(CollectorTestCase, self).setUp()
        self.cluster.now = time.time() - 3600     # snapshots are old
        self.statuses = {}
        self.driver._glance_image_status = (
            lambda image_id: self.statuses.get(image_id))

    def glance_delete(self, image_id):
        """What Glance's rbd store does on image delete."""
        img = self.cluster.pools['images'][image_id]
        img.snaps['snap']['protected'] = False
        del img.snaps['snap']
        del self.cluster.pools['images'][image_id]

    def upload_flatten_not_started(self):
        """A background-flatten upload whose flatten never started."""
        self.configuration.clone_upload_flatten = 'background'
        with mock.patch.object(self.driver, '_start_background_flatten'):
            return self.upload()

    def sweep(self, startup=False):
        return self.driver.collect_upload_leftovers(startup=startup)

    def test_nothing_to_do(self):
        self.upload()
        self.assertEqual({'snapshots': 0, 'clones': 0, 'volumes': 0,
                          'flattened': 0},
                         self.sweep())

    def test_image_deleted_then_sweep(self):
        meta = self.upload()
        self.glance_delete(meta['id'])
        self.assertEqual(1, self.sweep()['snapshots'])
        self.assertOnlyVolumeLeft()

    def test_image_deleted_then_volume_deleted(self):
        meta = self.upload()
        self.glance_delete(meta['id'])
        self.driver.delete_volume(self.volume)
        self.assertEqual({}, self.cluster.inventory())

    def test_volume_deleted_then_image_deleted(self):
        meta = self.upload()
        self.driver.delete_volume(self.volume)
        hidden = 'volumes/%s.deleted' % self.volume.name
        self.assertEqual([hidden, 'images/%s' % meta['id']],
                         sorted(self.cluster.inventory(), reverse=True))
        self.assertEqual({'snapshots': 0, 'clones': 0, 'volumes': 0,
                          'flattened': 0},
                         self.sweep())
        self.glance_delete(meta['id'])
        self.assertEqual({'snapshots': 1, 'clones': 0, 'volumes': 1,
                          'flattened': 0},
                         self.sweep())
        self.assertEqual({}, self.cluster.inventory())

    def test_two_images_one_deleted(self):
        first, second = self.upload(), self.upload()
        self.driver.delete_volume(self.volume)
        self.glance_delete(first['id'])
        self.assertEqual({'snapshots': 1, 'clones': 0, 'volumes': 0,
                          'flattened': 0},
                         self.sweep())
        self.glance_delete(second['id'])
        self.assertEqual({'snapshots': 1, 'clones': 0, 'volumes': 1,
                          'flattened': 0},
                         self.sweep())
        self.assertEqual({}, self.cluster.inventory())

    def test_hidden_clone_walks_chain(self):
        # The volume is a Cinder clone of another, deleted, volume.
        parent = 'volume-parent.deleted'
        self.cluster.add_image('volumes', parent)
        snap = '%s.clone_snap' % self.volume.name
        self.cluster.pools['volumes'][parent].snaps[snap] = {
            'protected': True, 'created': 0}
        self.cluster.pools['volumes'][self.volume.name].parent = (
            'volumes', parent, snap)
        meta = self.upload()
        self.driver.delete_volume(self.volume)
        self.glance_delete(meta['id'])
        self.sweep()
        self.assertEqual({}, self.cluster.inventory())

    def test_young_snapshot_is_left(self):
        self.cluster.now = time.time()
        meta = self.upload()
        self.glance_delete(meta['id'])
        self.assertEqual(0, self.sweep()['snapshots'])
        # A delete does not wait: no upload can run on a deleted volume.
        self.driver.delete_volume(self.volume)
        self.assertEqual({}, self.cluster.inventory())

    def test_in_flight_upload_is_left(self):
        image_id = 'in-flight'
        self.driver._uploads_in_flight.add(image_id)
        vol = self.cluster.pools['volumes'][self.volume.name]
        vol.snaps['upload-%s.clone_snap' % image_id] = {
            'protected': True, 'created': 0}
        self.assertEqual(0, self.sweep()['snapshots'])

    def crash_after_clone(self, started):
        """An upload that died after cloning: marker set, not registered."""
        meta = base.fake_image_meta()
        with mock.patch.object(location, 'register',
                               side_effect=SystemExit('killed')), \
                mock.patch.object(collector.time, 'time',
                                  return_value=started):
            self.assertRaises(SystemExit, self.upload, meta)
        return meta['id']

    def test_abandoned_clone_after_grace(self):
        image_id = self.crash_after_clone(time.time() - 7200)
        self.statuses[image_id] = 'queued'
        self.assertEqual({'snapshots': 1, 'clones': 1, 'volumes': 0,
                          'flattened': 0},
                         self.sweep())
        self.assertOnlyVolumeLeft()

    def test_abandoned_clone_image_gone(self):
        self.crash_after_clone(time.time() - 7200)
        self.assertEqual(1, self.sweep()['clones'])
        self.assertOnlyVolumeLeft()

    def test_recent_pending_clone_left_alone(self):
        image_id = self.crash_after_clone(time.time() - 10)
        self.statuses[image_id] = 'queued'
        self.assertEqual(0, self.sweep()['clones'])

    def test_startup_sweep_takes_own_host_at_once(self):
        self.driver.host = 'node1@ceph'
        image_id = self.crash_after_clone(time.time() - 10)
        self.statuses[image_id] = 'queued'
        self.assertEqual(1, self.sweep(startup=True)['clones'])
        self.assertOnlyVolumeLeft()

    def test_startup_sweep_waits_grace_when_glance_says_not_found(self):
        self.driver.host = 'node1@ceph'
        self.crash_after_clone(time.time() - 10)
        self.assertEqual(0, self.sweep(startup=True)['clones'])

    def crash_before_mark(self, snapshot_taken):
        """An upload that died between its clone and the pending mark."""
        self.cluster.now = snapshot_taken
        meta = base.fake_image_meta()
        with mock.patch.object(clone.UploadClone, '_mark_pending',
                               side_effect=SystemExit('killed')):
            self.assertRaises(SystemExit, self.upload, meta)
        img = self.cluster.pools['images'][meta['id']]
        self.assertEqual(({}, []), (img.metadata, list(img.snaps)))
        return meta['id']

    def test_unmarked_clone_without_snap_after_grace(self):
        image_id = self.crash_before_mark(time.time() - 7200)
        self.statuses[image_id] = 'queued'
        self.assertEqual({'snapshots': 1, 'clones': 1, 'volumes': 0,
                          'flattened': 0},
                         self.sweep(startup=True))
        self.assertOnlyVolumeLeft()

    def test_unmarked_clone_without_snap_waits_grace(self):
        # No mark, so no host: even the start-up sweep waits the grace.
        self.driver.host = 'node1@ceph'
        image_id = self.crash_before_mark(time.time() - 10)
        self.statuses[image_id] = 'queued'
        self.assertEqual(0, self.sweep(startup=True)['clones'])
        self.assertIn('images/%s' % image_id, self.cluster.inventory())

    def test_unmarked_clone_with_snap_is_a_finished_upload(self):
        meta = self.upload()
        self.statuses[meta['id']] = 'queued'
        self.cluster.now = time.time() - 7200
        self.assertEqual(0, self.sweep(startup=True)['clones'])
        self.assertIn('images/%s' % meta['id'], self.cluster.inventory())

    def test_pending_but_active_only_clears_mark(self):
        image_id = self.crash_after_clone(time.time() - 7200)
        self.statuses[image_id] = 'active'
        self.assertEqual(0, self.sweep()['clones'])
        img = self.cluster.pools['images'][image_id]
        self.assertEqual({}, img.metadata)
        self.assertEqual(['snap'], list(img.snaps))

    def test_glance_unanswering_removes_nothing(self):
        image_id = self.crash_after_clone(time.time() - 7200)

        def broken(image_id):
            raise RuntimeError('Glance down')
        self.driver._glance_image_status = broken
        self.sweep()
        self.assertIn('images/%s' % image_id, self.cluster.inventory())

    def test_successful_upload_has_no_mark(self):
        meta = self.upload()
        self.assertEqual({},
                         self.cluster.pools['images'][meta['id']].metadata)

    def test_sync_flatten_policy(self):
        self.configuration.clone_upload_flatten = 'sync'
        meta = self.upload()
        img = self.cluster.pools['images'][meta['id']]
        self.assertIsNone(img.parent)
        self.assertEqual({'volumes/%s' % self.volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())
        self.assertEqual({}, img.metadata)

    def test_background_flatten_policy(self):
        self.configuration.clone_upload_flatten = 'background'
        with mock.patch.object(self.driver, '_start_background_flatten',
                               side_effect=self.driver._background_flatten
                               ) as start:
            meta = self.upload()
        start.assert_called_once_with('images', meta['id'], self.volume.name)
        self.assertNotIn(('list', 'volumes'), self.cluster.calls)
        img = self.cluster.pools['images'][meta['id']]
        self.assertIsNone(img.parent)
        self.assertEqual({}, img.metadata)
        self.assertEqual({'volumes/%s' % self.volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())

    def test_background_flatten_after_volume_delete(self):
        meta = self.upload_flatten_not_started()
        self.driver.delete_volume(self.volume)
        self.assertIn('%s.deleted' % self.volume.name,
                      self.cluster.pools['volumes'])
        self.driver._background_flatten('images', meta['id'],
                                        self.volume.name)
        self.assertEqual({'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())
        self.assertNotIn(('list', 'volumes'), self.cluster.calls)

    def test_background_flatten_thread(self):
        with mock.patch.object(self.driver, '_background_flatten') as run:
            self.driver._start_background_flatten(
                'images', 'image-id', self.volume.name).join()
        run.assert_called_once_with('images', 'image-id', self.volume.name)
        self.assertIn('image-id', self.driver._flattens_in_flight)

    def test_background_flatten_resumed_by_sweep(self):
        # cinder-volume restarted before the flatten ran.
        meta = self.upload_flatten_not_started()
        img = self.cluster.pools['images'][meta['id']]
        self.assertEqual({collector.FLATTEN_KEY},
                         set(img.metadata))
        self.assertEqual(self.driver.host or '', collector.parse_pending(
            img.metadata[collector.FLATTEN_KEY])[0])
        counts = self.sweep(startup=True)
        self.assertEqual(1, counts['flattened'])
        self.assertEqual(1, counts['snapshots'])
        self.assertIsNone(img.parent)
        self.assertEqual({'volumes/%s' % self.volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())

    def test_resumed_flatten_releases_young_snapshot_at_once(self):
        # The snapshot of an image the sweep just flattened is known to
        # be done with: it does not wait for min_age like others.
        self.cluster.now = time.time()
        meta = self.upload_flatten_not_started()
        counts = self.sweep(startup=True)
        self.assertEqual((1, 1), (counts['flattened'], counts['snapshots']))
        self.assertEqual({'volumes/%s' % self.volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())

    def test_flatten_of_another_backend_waits_for_grace(self):
        # Backends sharing a pool each finish their own flattens.
        meta = self.upload_flatten_not_started()
        img = self.cluster.pools['images'][meta['id']]
        img.metadata[collector.FLATTEN_KEY] = collector.pending_value(
            'other@backend', time.time())
        self.assertEqual(0, self.sweep(startup=True)['flattened'])
        img.metadata[collector.FLATTEN_KEY] = collector.pending_value(
            'other@backend', time.time() - 7200)
        self.assertEqual(1, self.sweep()['flattened'])
        self.assertIsNone(img.parent)

    def test_hidden_volume_snapshot_does_not_wait(self):
        self.cluster.now = time.time()
        meta = self.upload()
        self.driver.delete_volume(self.volume)
        self.glance_delete(meta['id'])
        counts = self.sweep()
        self.assertEqual((1, 1), (counts['snapshots'], counts['volumes']))
        self.assertEqual({}, self.cluster.inventory())

    def test_periodic_task_only_when_enabled(self):
        with mock.patch('oslo_service.loopingcall.'
                        'FixedIntervalLoopingCall') as looping, \
                mock.patch('cinder.volume.drivers.rbd.RBDDriver.'
                           'check_for_setup_error'):
            self.configuration.enable_clone_optimization = False
            self.driver.check_for_setup_error()
            looping.assert_not_called()
            self.configuration.enable_clone_optimization = True
            self.driver.check_for_setup_error()
            looping.return_value.start.assert_called_once_with(
                interval=600, initial_delay=0)
