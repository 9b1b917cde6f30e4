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

import os
import threading
import time
from unittest import mock

import ddt

from cinder_rbd_upload_clone import clone
from cinder_rbd_upload_clone import collector as collector_mod
from cinder_rbd_upload_clone import glance_service
from cinder_rbd_upload_clone import journal
from cinder_rbd_upload_clone import location
from cinder_rbd_upload_clone import options
from tests.unit import base
from tests.unit import fake_ceph


@ddt.ddt
class CollectorTestCase(base.DriverTestCase):

    def setUp(self):
        super(CollectorTestCase, self).setUp()
        self.cluster.now = time.time() - 3600     # snapshots are old
        self.states = {}
        patcher = mock.patch.object(glance_service, 'image_state',
                                    side_effect=self.image_state)
        self.image_state_mock = patcher.start()
        self.addCleanup(patcher.stop)

    def image_state(self, image_id):
        state = self.states.get(image_id, glance_service.ImageState(
            None, False))
        if isinstance(state, Exception):
            raise state
        if isinstance(state, str):
            state = glance_service.ImageState(state, False)
        return state

    def glance_delete(self, image_id):
        """What Glance's rbd store does on image delete."""
        img = self.cluster.pools['images'][image_id]
        img.snaps['snap']['protected'] = False
        del img.snaps['snap']
        del self.cluster.pools['images'][image_id]

    def records(self):
        return {k.decode() if isinstance(k, bytes) else k: v for k, v in
                self.cluster.omap('volumes', journal.OBJECT).items()}

    def record(self, image_id):
        value = self.records()[image_id]
        return journal.Record.decode(image_id, value)

    def restart(self, host=None):
        """A new cinder-volume process of the same (or another) host."""
        self.driver = type(self.driver)(
            configuration=self.configuration,
            rados=self.cluster.rados_module(),
            rbd=self.cluster.rbd_module(), host=host or self.driver.host)
        self.driver._active_config = {
            'name': 'ceph', 'conf': '/etc/ceph/ceph.conf', 'user': 'cinder',
            'secret_uuid': None}
        self.driver._process_start = time.time() + 1

    def upload_flatten_not_started(self):
        """A background-flatten upload whose flatten never started."""
        self.configuration.clone_upload_flatten = 'background'
        with mock.patch.object(self.driver, '_start_background_flatten'):
            return self.upload()

    def sweep(self):
        return self.driver.collect_upload_leftovers()

    def counts(self, **kwargs):
        counts = {'snapshots': 0, 'clones': 0, 'volumes': 0,
                  'flattened': 0, 'served': 0, 'kept': 0, 'reclaimed': 0}
        counts.update(kwargs)
        return counts

    # Both delete orders.

    def test_nothing_to_do(self):
        self.upload()
        self.assertEqual(self.counts(), self.sweep())
        self.assertEqual({}, self.records())

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
        self.assertEqual(self.counts(), self.sweep())
        self.glance_delete(meta['id'])
        self.assertEqual(self.counts(snapshots=1, volumes=1), self.sweep())
        self.assertEqual({}, self.cluster.inventory())

    def test_two_images_one_deleted(self):
        first, second = self.upload(), self.upload()
        self.driver.delete_volume(self.volume)
        self.glance_delete(first['id'])
        self.assertEqual(self.counts(snapshots=1), self.sweep())
        self.glance_delete(second['id'])
        self.assertEqual(self.counts(snapshots=1, volumes=1), self.sweep())
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

    def test_hidden_volume_goes_to_trash_with_deferred_deletion(self):
        self.configuration.enable_deferred_deletion = True
        self.configuration.deferred_deletion_delay = 3600
        meta = self.upload()
        self.driver.delete_volume(self.volume)
        self.glance_delete(meta['id'])
        with mock.patch.object(self.driver.RBDProxy(), 'trash_move',
                               create=True) as trash_move, \
                mock.patch.object(self.driver, 'RBDProxy') as proxy:
            proxy.return_value.trash_move = trash_move
            proxy.return_value.list.return_value = [
                '%s.deleted' % self.volume.name]
            self.sweep()
        trash_move.assert_called_once_with(
            mock.ANY, '%s.deleted' % self.volume.name, 3600)
        proxy.return_value.remove.assert_not_called()

    def test_young_snapshot_is_left(self):
        self.cluster.now = time.time()
        meta = self.upload()
        self.glance_delete(meta['id'])
        self.assertEqual(0, self.sweep()['snapshots'])
        # A delete does not wait: no upload can run on a deleted volume.
        self.driver.delete_volume(self.volume)
        self.assertEqual({}, self.cluster.inventory())

    def test_snapshot_age_is_utc_in_every_time_zone(self):
        # librbd's snapshot times are naive UTC datetimes; read as local
        # time they made a 10 s old snapshot 9 hours old in Tokyo.
        self.addCleanup(time.tzset)
        self.addCleanup(os.environ.__setitem__, 'TZ',
                        os.environ.get('TZ', 'UTC'))
        os.environ['TZ'] = 'Asia/Tokyo'
        time.tzset()
        self.cluster.now = time.time() - 10
        meta = self.upload()
        self.glance_delete(meta['id'])
        self.assertEqual(0, self.sweep()['snapshots'])

    def test_snapshot_of_an_upload_in_progress_is_left(self):
        # Another host's upload has taken its snapshot and not cloned yet:
        # its journal record holds the snapshot, whatever its age.
        vol = self.cluster.pools['volumes'][self.volume.name]
        vol.snaps[clone.upload_snap_name('elsewhere')] = {
            'protected': True, 'created': 0}
        jrnl = journal.Journal(self.cluster.rados_module(),
                               self.cluster.rados_module().Rados()
                               .open_ioctx('volumes'))
        jrnl.put(journal.new_record('elsewhere', self.volume.name,
                                    'images', 'other@ceph'))
        self.assertEqual(0, self.sweep()['snapshots'])
        self.driver.delete_volume(self.volume)
        self.assertIn('%s.deleted' % self.volume.name,
                      self.cluster.pools['volumes'])

    # Uploads that did not finish.

    def crash_after_clone(self):
        """An upload that died after cloning, before Glance took it."""
        meta = base.fake_image_meta()
        with mock.patch.object(location, 'register',
                               side_effect=SystemExit('killed')):
            self.assertRaises(SystemExit, self.upload, meta)
        self.assertEqual(journal.PENDING, self.record(meta['id']).state)
        return meta['id']

    @ddt.data(('queued', True), ('killed', True), ('deleted', True),
              (None, True), ('importing', False), ('saving', False))
    @ddt.unpack
    def test_restarted_host_settles_dead_upload(self, status, removed):
        image_id = self.crash_after_clone()
        self.states[image_id] = glance_service.ImageState(
            status, status == 'importing')
        self.restart()
        counts = self.sweep()
        self.assertEqual(1 if removed else 0, counts['clones'])
        if removed:
            self.assertOnlyVolumeLeft()
            self.assertEqual({}, self.records())
        else:
            self.assertIn('images/%s' % image_id, self.cluster.inventory())
            self.assertIn(image_id, self.records())

    @ddt.data('active', 'deactivated')
    def test_served_image_keeps_its_clone(self, status):
        # Glance serves the image (or did: deactivated): the upload was
        # done; its clone is the image's data.
        image_id = self.crash_after_clone()
        self.states[image_id] = status
        self.restart()
        self.assertEqual(self.counts(served=1), self.sweep())
        self.assertEqual(['snap'], self.cluster.inventory()[
            'images/%s' % image_id])
        self.assertEqual({}, self.records())

    def test_pending_delete_image_is_glances(self):
        image_id = self.crash_after_clone()
        self.states[image_id] = 'pending_delete'
        self.restart()
        self.sweep()
        self.assertIn('images/%s' % image_id, self.cluster.inventory())
        self.assertEqual({}, self.records())

    def test_404_without_admin_removes_nothing(self):
        image_id = self.crash_after_clone()
        self.restart()
        with mock.patch.object(glance_service, 'sees_all_images',
                               return_value=(False, 'not admin')):
            self.assertEqual(self.counts(kept=1), self.sweep())
        self.assertIn('images/%s' % image_id, self.cluster.inventory())

    def test_glance_unanswering_removes_nothing(self):
        image_id = self.crash_after_clone()
        self.states[image_id] = RuntimeError('Glance down')
        self.restart()
        self.sweep()
        self.assertIn('images/%s' % image_id, self.cluster.inventory())
        self.assertIn(image_id, self.records())

    def test_own_dead_upload_waits_for_grace_in_same_process(self):
        # This process's own upload failed to drop its record: it is not
        # in flight, but it began after the process started.
        image_id = self.crash_after_clone()
        self.states[image_id] = 'queued'
        self.assertEqual(0, self.sweep()['clones'])
        self.configuration.clone_upload_gc_grace = 0
        with mock.patch.object(journal.time, 'time',
                               return_value=time.time() + 10):
            self.assertEqual(1, self.sweep()['clones'])
        self.assertOnlyVolumeLeft()

    def test_upload_begun_during_startup_sweep_is_spared(self):
        # The record of an upload that began after this process started
        # is not a dead process's, even if the sweep's view of what is in
        # flight misses it.
        image_id = self.crash_after_clone()
        self.states[image_id] = 'queued'
        self.driver._process_start = time.time() - 60
        self.assertEqual(0, self.sweep()['clones'])
        self.assertIn('images/%s' % image_id, self.cluster.inventory())

    def test_in_flight_upload_is_never_taken(self):
        image_id = self.crash_after_clone()
        self.states[image_id] = 'queued'
        self.driver._process_start = time.time() + 1
        self.driver._in_flight.add(image_id)
        self.configuration.clone_upload_gc_grace = 0
        self.assertEqual(0, self.sweep()['clones'])

    def test_other_host_upload_waits_for_its_heartbeat(self):
        image_id = self.crash_after_clone()
        self.states[image_id] = 'queued'
        self.restart(host='other@ceph')
        self.assertEqual(0, self.sweep()['clones'])
        with mock.patch.object(journal.time, 'time',
                               return_value=time.time() + 7200):
            self.assertEqual(1, self.sweep()['clones'])
        self.assertOnlyVolumeLeft()

    def test_heartbeat_keeps_a_long_upload_alive(self):
        image_id = self.crash_after_clone()
        self.driver._in_flight.add(image_id)
        later = time.time() + 7000
        with mock.patch.object(journal.time, 'time', return_value=later):
            self.driver._heartbeat()
        self.assertEqual(later, self.record(image_id).beat)
        self.restart(host='other@ceph')
        with mock.patch.object(journal.time, 'time',
                               return_value=later + 60):
            self.assertEqual(0, self.sweep()['clones'])

    def test_flattened_clone_of_dead_upload_is_found(self):
        # sync flatten: the clone has no parent; only the journal knows it.
        self.configuration.clone_upload_flatten = options.FLATTEN_SYNC
        image_id = self.crash_after_clone()
        self.assertIsNone(self.cluster.pools['images'][image_id].parent)
        self.restart()
        self.assertEqual(1, self.sweep()['clones'])
        self.assertOnlyVolumeLeft()

    # Background flatten.

    def test_sync_flatten_policy(self):
        self.configuration.clone_upload_flatten = 'sync'
        meta = self.upload()
        img = self.cluster.pools['images'][meta['id']]
        self.assertIsNone(img.parent)
        self.assertEqual({'volumes/%s' % self.volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())
        self.assertEqual({}, self.records())

    def test_sync_flatten_without_room_keeps_the_clone(self):
        self.configuration.clone_upload_flatten = 'sync'
        self.cluster.max_avail['images'] = 1 << 20
        meta = self.upload()
        img = self.cluster.pools['images'][meta['id']]
        self.assertEqual('volumes', img.parent[0])
        self.assertNotIn(('flatten', 'images', meta['id']),
                         self.cluster.calls)

    def test_too_deep_without_room_falls_back(self):
        self.configuration.rbd_max_clone_depth = 0
        self.cluster.max_avail['images'] = 1 << 20
        self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

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
        self.assertEqual({}, self.records())
        self.assertEqual({'volumes/%s' % self.volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())

    def test_background_flatten_uses_the_parents_limiter(self):
        meta = self.upload_flatten_not_started()
        self.driver._semaphore = mock.MagicMock()
        self.driver._background_flatten('images', meta['id'],
                                        self.volume.name)
        self.driver._semaphore.__enter__.assert_called_once_with()
        self.assertIsNone(self.cluster.pools['images'][meta['id']].parent)

    def test_background_flatten_without_limit(self):
        # rbd_concurrent_flatten_operations = 0 is "no limit" upstream.
        self.configuration.rbd_concurrent_flatten_operations = 0
        self.restart()
        meta = self.upload_flatten_not_started()
        thread = self.driver._start_background_flatten(
            'images', meta['id'], self.volume.name)
        thread.join(10)
        self.assertFalse(thread.is_alive())
        self.assertIsNone(self.cluster.pools['images'][meta['id']].parent)

    def test_background_flatten_without_room_is_deferred(self):
        meta = self.upload_flatten_not_started()
        self.cluster.max_avail['images'] = 1 << 20
        self.driver._background_flatten('images', meta['id'],
                                        self.volume.name)
        self.assertEqual('volumes',
                         self.cluster.pools['images'][meta['id']].parent[0])
        self.assertEqual(journal.FLATTEN, self.record(meta['id']).state)
        self.cluster.max_avail['images'] = 1 << 40
        self.restart()
        self.assertEqual(1, self.sweep()['flattened'])

    def test_background_flatten_needs_deep_flatten(self):
        self.cluster.default_features &= ~fake_ceph.RBD_FEATURE_DEEP_FLATTEN
        self.configuration.clone_upload_flatten = 'background'
        with mock.patch.object(self.driver,
                               '_start_background_flatten') as start:
            meta = self.upload()
        start.assert_not_called()
        self.assertEqual({}, self.records())
        self.assertEqual('volumes',
                         self.cluster.pools['images'][meta['id']].parent[0])

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

    def test_background_flatten_resumed_after_restart(self):
        meta = self.upload_flatten_not_started()
        self.assertEqual(journal.FLATTEN, self.record(meta['id']).state)
        self.restart()
        counts = self.sweep()
        self.assertEqual((1, 0), (counts['flattened'], counts['snapshots']))
        img = self.cluster.pools['images'][meta['id']]
        self.assertIsNone(img.parent)
        self.assertEqual({'volumes/%s' % self.volume.name: [],
                          'images/%s' % meta['id']: ['snap']},
                         self.cluster.inventory())
        self.assertEqual({}, self.records())

    def test_flatten_of_another_host_waits_for_grace(self):
        meta = self.upload_flatten_not_started()
        self.restart(host='other@ceph')
        self.assertEqual(0, self.sweep()['flattened'])
        with mock.patch.object(journal.time, 'time',
                               return_value=time.time() + 7200):
            self.assertEqual(1, self.sweep()['flattened'])
        self.assertIsNone(self.cluster.pools['images'][meta['id']].parent)

    def test_flatten_is_claimed_once(self):
        meta = self.upload_flatten_not_started()
        self.restart()
        jrnl = journal.Journal(self.cluster.rados_module(),
                               self.cluster.rados_module().Rados()
                               .open_ioctx('volumes'))
        record = jrnl.get(meta['id'])

        def gone(_record):
            return True
        self.assertIsNotNone(jrnl.claim(meta['id'], 'a@ceph', gone))
        self.assertEqual('a@ceph', jrnl.get(meta['id']).host)
        self.assertIsNone(jrnl.claim(meta['id'], 'b@ceph',
                                     lambda r: r.host == record.host))

    # A stalled owner (frozen, paused, cut off from Ceph longer than the
    # grace) whose record another host's collector took over.

    def take_over(self, image_id, host='other@ceph'):
        jrnl = journal.Journal(self.cluster.rados_module(),
                               self.cluster.rados_module().Rados()
                               .open_ioctx('volumes'))
        self.assertIsNotNone(jrnl.claim(image_id, host, lambda r: True))

    def test_taken_over_upload_does_not_register(self):
        # The new owner judged the image queued without a location and
        # removes the clone: registering it now would make Glance serve
        # an image whose data is being removed.
        meta = base.fake_image_meta()
        real_create = clone.UploadClone.create

        def create_then_stall(upload, *args, **kwargs):
            done = real_create(upload, *args, **kwargs)
            self.take_over(meta['id'])
            return done
        with mock.patch.object(clone.UploadClone, 'create',
                               create_then_stall), \
                mock.patch.object(location, 'register') as register:
            self.assertRaises(journal.TakenOver, self.upload, meta)
        register.assert_not_called()
        # No generic copy either (it would write the image's name in
        # Glance's pool), and nothing undone: the clone and the record
        # are the new owner's.
        self.generic_upload.assert_not_called()
        self.assertEqual('other@ceph', self.record(meta['id']).host)
        self.assertIn('images/%s' % meta['id'], self.cluster.inventory())

    def test_taken_over_upload_neither_undoes_nor_copies(self):
        # A step fails after the take-over: the undo and the generic copy
        # would remove the new owner's clone and write the image's name
        # in Glance's pool.
        meta = base.fake_image_meta()

        def stalled(upload, *args, **kwargs):
            self.take_over(meta['id'])
            raise RuntimeError('woke up to a removed clone')
        with mock.patch.object(clone.UploadClone, '_protect_image_snapshot',
                               stalled):
            self.assertRaises(journal.TakenOver, self.upload, meta)
        self.generic_upload.assert_not_called()
        self.assertEqual('other@ceph', self.record(meta['id']).host)
        self.assertIn('images/%s' % meta['id'], self.cluster.inventory())

    def test_taken_over_flatten_is_not_run(self):
        meta = self.upload_flatten_not_started()
        self.take_over(meta['id'])
        self.driver._background_flatten('images', meta['id'],
                                        self.volume.name)
        self.assertIsNotNone(self.cluster.pools['images'][meta['id']].parent)
        self.assertEqual('other@ceph', self.record(meta['id']).host)
        self.assertEqual(journal.FLATTEN, self.record(meta['id']).state)

    def test_hold_renews_the_beat_against_a_take_over(self):
        # The owner's hold, just before the location call, and another
        # host's claim are serialised by the journal's lock: after the
        # hold the record is fresh and the claim judges it so.
        image_id = self.crash_after_clone()
        jrnl = journal.Journal(self.cluster.rados_module(),
                               self.cluster.rados_module().Rados()
                               .open_ioctx('volumes'))
        later = time.time() + 7200
        with mock.patch.object(journal.time, 'time', return_value=later):
            self.assertTrue(jrnl.hold(image_id, self.driver.host))
            self.restart(host='other@ceph')
            self.assertIsNone(jrnl.claim(image_id, 'other@ceph',
                                         self.driver._is_gone))
        self.assertEqual(later, self.record(image_id).beat)
        self.assertFalse(jrnl.hold(image_id, 'third@ceph'))
        self.assertFalse(jrnl.hold('no-such-image', self.driver.host))

    def test_interrupted_flatten_is_not_resumed(self):
        # A flatten whose process died still holds the clone's exclusive
        # lock. Ceph 16's librbd, resuming it from another client,
        # detaches the parent with the objects that were in flight left
        # empty (tests/e2e, and reproduced with librbd alone): the image
        # would serve zeros. It stays a clone instead, with its data.
        meta = self.upload_flatten_not_started()
        img = self.cluster.pools['images'][meta['id']]
        img.lock_owners = [{'mode': 1, 'owner': 'client.4242 dead'}]
        self.restart()
        counts = self.sweep()
        self.assertEqual(0, counts['flattened'])
        self.assertIsNotNone(img.parent)
        # Not owed any more: the record goes, the upload snapshot stays
        # for the image (collected when the image is deleted).
        self.assertEqual({}, self.records())
        self.assertEqual(['upload-%s.clone_snap' % meta['id']],
                         self.cluster.inventory()[
                             'volumes/%s' % self.volume.name])
        self.assertEqual(0, self.sweep()['flattened'])

    def test_hidden_volume_snapshot_does_not_wait(self):
        self.cluster.now = time.time()
        meta = self.upload()
        self.driver.delete_volume(self.volume)
        self.glance_delete(meta['id'])
        counts = self.sweep()
        self.assertEqual((1, 1), (counts['snapshots'], counts['volumes']))
        self.assertEqual({}, self.cluster.inventory())

    # The periodic tasks.

    def test_periodic_tasks_only_when_enabled(self):
        with mock.patch('oslo_service.loopingcall.'
                        'FixedIntervalLoopingCall') as looping, \
                mock.patch('cinder.volume.drivers.rbd.RBDDriver.'
                           'check_for_setup_error'):
            self.configuration.enable_clone_optimization = False
            self.driver.check_for_setup_error()
            looping.assert_not_called()
            self.configuration.enable_clone_optimization = True
            self.driver.check_for_setup_error()
            self.assertEqual(
                [mock.call(interval=60, initial_delay=60),
                 mock.call(interval=600, initial_delay=0)],
                looping.return_value.start.call_args_list)


@ddt.ddt
class JournalTestCase(base.DriverTestCase):

    def setUp(self):
        super(JournalTestCase, self).setUp()
        rados = self.cluster.rados_module()
        self.journal = journal.Journal(rados,
                                       rados.Rados().open_ioctx('volumes'),
                                       lock_timeout=0.05)

    def test_empty_journal(self):
        self.assertEqual({}, self.journal.records())
        self.assertIsNone(self.journal.get('x'))

    def test_put_get_remove(self):
        record = journal.new_record('img', 'volume-1', 'images', 'h@b',
                                    flatten=True, now=5.0)
        self.journal.put(record)
        self.assertEqual(record, self.journal.get('img'))
        self.journal.remove('img')
        self.assertEqual({}, self.journal.records())

    def test_served_owes_flatten_or_drops(self):
        self.journal.put(journal.new_record('a', 'v', 'images', 'h'))
        self.journal.put(journal.new_record('b', 'v', 'images', 'h',
                                            flatten=True))
        self.assertIsNone(self.journal.served('a'))
        self.assertEqual(journal.FLATTEN, self.journal.served('b').state)
        self.assertEqual(['b'], list(self.journal.records()))

    def test_unreadable_record_is_left_alone(self):
        self.cluster.objects[('volumes', journal.OBJECT)]['omap'][
            'bad'] = b'not json'
        self.assertEqual({}, self.journal.records())
        self.assertIn('bad', self.cluster.omap('volumes', journal.OBJECT))

    def test_busy_lock_times_out(self):
        self.cluster.objects[('volumes', journal.OBJECT)]['lock'] = 'other'
        self.assertRaises(journal.JournalBusy, self.journal.put,
                          journal.new_record('a', 'v', 'images', 'h'))

    def test_lock_waits_for_holder(self):
        obj = self.cluster.objects[('volumes', journal.OBJECT)]
        obj['lock'] = 'other'
        self.journal.lock_timeout = 5
        threading.Timer(0.1, obj.__setitem__, ('lock', None)).start()
        self.journal.put(journal.new_record('a', 'v', 'images', 'h'))
        self.assertIn('a', self.journal.records())

    @ddt.data(
        # (record host, in flight, started vs process start, stale, gone)
        ('me', True, 'after', True, False),
        ('me', False, 'before', False, True),
        ('me', False, 'after', False, False),
        ('me', False, 'after', True, True),
        ('other', False, 'after', False, False),
        ('other', False, 'before', False, False),
        ('other', False, 'after', True, True))
    @ddt.unpack
    def test_owner_gone(self, host, in_flight, started, stale, gone):
        now = 10000.0
        record = journal.Record(
            image_id='img', state=journal.PENDING, volume='v', pool='p',
            host=host, started=now - (100 if started == 'before' else 10),
            beat=now - (500 if stale else 1), flatten=False)
        self.assertEqual(gone, journal.owner_gone(
            record, 'me', {'img'} if in_flight else set(),
            process_start=now - 50, grace=300, now=now))


class HiddenVolumeTestCase(base.DriverTestCase):
    """Hidden volumes the parent driver leaves (Cinder 29)."""

    def setUp(self):
        super(HiddenVolumeTestCase, self).setUp()
        self.known = set()
        patcher = mock.patch(
            'cinder.objects.VolumeList.get_all',
            side_effect=lambda ctx, filters, limit: [
                v for v in filters.values() if v in self.known])
        self.get_all = patcher.start()
        self.addCleanup(patcher.stop)
        self.configuration.clone_upload_gc_interval = 0

    def source_and_clone(self):
        """A source volume and a Cinder clone of it.

        As create_cloned_volume lays them out: <clone>.clone_snap on the
        source.
        """
        source = self.volume
        clone_vol = base.fake_volume()
        snap = '%s.clone_snap' % clone_vol.name
        vol = self.cluster.pools['volumes'][source.name]
        vol.snaps[snap] = {'protected': True, 'created': 0}
        self.cluster.pools['volumes'][clone_vol.name] = fake_ceph.FakeImage(
            vol.size, vol.features, 22,
            parent=('volumes', source.name, snap))
        self.known.update((source.id, clone_vol.id))
        return source, clone_vol

    def sweep(self):
        return self.driver.collect_upload_leftovers()

    def test_upstream_leaves_the_source_hidden(self):
        # What the parent driver alone does: source deleted first (hidden),
        # then the clone (fast path): the hidden source stays for ever.
        self.configuration.enable_clone_optimization = False
        source, clone_vol = self.source_and_clone()
        self.driver.delete_volume(source)
        self.known.discard(source.id)
        self.driver.delete_volume(clone_vol)
        self.assertEqual(
            {'volumes/%s.deleted' % source.name:
             ['%s.clone_snap' % clone_vol.name]},
            self.cluster.inventory())

    def test_delete_releases_the_hidden_source(self):
        source, clone_vol = self.source_and_clone()
        self.driver.delete_volume(source)
        self.known.discard(source.id)
        self.driver.delete_volume(clone_vol)
        self.assertEqual({}, self.cluster.inventory())

    def test_delete_releases_the_live_sources_snapshot(self):
        source, clone_vol = self.source_and_clone()
        self.driver.delete_volume(clone_vol)
        self.assertEqual({'volumes/%s' % source.name: []},
                         self.cluster.inventory())

    def test_option_off_keeps_upstream_behaviour(self):
        self.configuration.clone_upload_reclaim_hidden_volumes = False
        source, clone_vol = self.source_and_clone()
        self.driver.delete_volume(source)
        self.known.discard(source.id)
        self.driver.delete_volume(clone_vol)
        self.assertEqual(1, len(self.cluster.inventory()))
        self.assertEqual(0, self.sweep()['reclaimed'])
        self.assertEqual(1, len(self.cluster.inventory()))

    def leftover(self, volume_id=None):
        """A hidden volume as upstream leaves it."""
        volume_id = volume_id or 'a1b2c3d4-0000-4000-8000-000000000001'
        name = 'volume-%s.deleted' % volume_id
        self.cluster.add_image('volumes', name)
        self.cluster.pools['volumes'][name].snaps[
            'volume-x.clone_snap'] = {'protected': True, 'created': 0}
        return name, volume_id

    def test_sweep_reclaims_a_leftover(self):
        name, _vid = self.leftover()
        with mock.patch.object(collector_mod.LOG, 'info') as info:
            self.assertEqual(1, self.sweep()['reclaimed'])
        self.assertNotIn('volumes/%s' % name, self.cluster.inventory())
        self.assertIn('Reclaiming hidden volume', info.call_args_list[0][0][0])

    def test_sweep_keeps_a_leftover_cinder_still_knows(self):
        name, vid = self.leftover()
        self.known.add(vid)
        with mock.patch.object(collector_mod.LOG, 'debug') as debug:
            self.assertEqual(0, self.sweep()['reclaimed'])
        self.assertIn('volumes/%s' % name, self.cluster.inventory())
        self.assertIn('Cinder has volume',
                      [c[0][1]['why'] for c in debug.call_args_list
                       if c[0][0].startswith('Hidden volume')][0])

    def test_sweep_keeps_a_leftover_with_a_child(self):
        name, _vid = self.leftover()
        self.cluster.pools['volumes']['volume-x'] = fake_ceph.FakeImage(
            1, 61, 22, parent=('volumes', name, 'volume-x.clone_snap'))
        self.assertEqual(0, self.sweep()['reclaimed'])
        self.assertIn('volumes/%s' % name, self.cluster.inventory())

    def test_sweep_keeps_a_leftover_when_cinder_cannot_answer(self):
        name, _vid = self.leftover()
        self.get_all.side_effect = RuntimeError('db down')
        self.assertEqual(0, self.sweep()['reclaimed'])
        self.assertIn('volumes/%s' % name, self.cluster.inventory())

    def test_sweep_keeps_a_leftover_held_by_an_upload(self):
        name, _vid = self.leftover()
        self.cluster.pools['volumes'][name].snaps[
            clone.upload_snap_name('img')] = {'protected': True,
                                              'created': time.time()}
        rados = self.cluster.rados_module()
        journal.Journal(rados, rados.Rados().open_ioctx('volumes')).put(
            journal.new_record('img', name, 'images', 'other@ceph'))
        self.assertEqual(0, self.sweep()['reclaimed'])
        self.assertIn('volumes/%s' % name, self.cluster.inventory())

    def test_sweep_ignores_names_that_are_not_cinders(self):
        self.cluster.add_image('volumes', 'something.deleted')
        self.cluster.pools['volumes']['something.deleted'].snaps['s'] = {
            'protected': False, 'created': 0}
        self.assertEqual(0, self.sweep()['reclaimed'])
