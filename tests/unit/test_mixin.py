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

"""The upload path end to end on a fake cluster, Glance mocked."""

from unittest import mock
import weakref

import ddt
import glanceclient.exc
from oslo_config import cfg

from cinder import exception
from cinder.volume.drivers import rbd as rbd_driver

from cinder_rbd_upload_clone import clone
from cinder_rbd_upload_clone import journal
from cinder_rbd_upload_clone import location
from cinder_rbd_upload_clone import mixin
from tests.unit import base
from tests.unit import test_inspection


@ddt.ddt
class CloneUploadTestCase(base.DriverTestCase):

    def test_clone_layout_matches_glance_rbd_store(self):
        meta = self.upload()
        image_id = meta['id']
        snap = 'upload-%s.clone_snap' % image_id
        self.assertEqual({'volumes/%s' % self.volume.name: [snap],
                          'images/%s' % image_id: ['snap']},
                         self.cluster.inventory())
        vol = self.cluster.pools['volumes'][self.volume.name]
        img = self.cluster.pools['images'][image_id]
        self.assertTrue(vol.snaps[snap]['protected'])
        self.assertTrue(img.snaps['snap']['protected'])
        self.assertEqual(('volumes', self.volume.name, snap), img.parent)
        # Glance's rbd store uses rbd_default_features of its cluster.
        self.assertEqual(self.cluster.default_features, img.features)
        self.generic_upload.assert_not_called()

    def test_location_is_glance_rbd_url(self):
        meta = self.upload()
        add = [c for c in self.glance.call.call_args_list
               if c[0][1] == 'add_image_location'][0]
        self.assertEqual(
            (meta['id'], 'rbd://fsid-volumes/images/%s/snap' % meta['id'],
             {}), add[0][2:])

    def test_volume_data_untouched(self):
        self.upload()
        mutating = [c for c in self.cluster.calls
                    if c[1] == 'volumes' and c[0] not in (
                        'create_snap', 'protect_snap', 'clone')]
        self.assertEqual([], mutating)

    def test_option_off_is_parent_behaviour(self):
        self.configuration.enable_clone_optimization = False
        meta = self.upload()
        self.generic_upload.assert_called_once_with(
            self.context, self.volume, mock.sentinel.image_service, meta)
        self.glance.call.assert_not_called()
        self.assertOnlyVolumeLeft()
        self.assertEqual(0, self.cluster.connections)

    @ddt.data(('qcow2', 'bare'), ('raw', 'ovf'), ('raw', 'compressed'),
              ('vmdk', 'bare'))
    @ddt.unpack
    def test_other_formats_use_generic(self, disk, container):
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload(base.fake_image_meta(disk, container))
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()
        self.assertEqual(1, info.call_count)
        self.assertIn('generic copy', info.call_args[0][1]['path'])

    def test_log_line_says_where_the_time_went(self):
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload()
        args = info.call_args[0][1]
        self.assertEqual('clone', args['path'])
        steps = [step for step, _secs in args['timings']]
        self.assertEqual(
            ['write journal record', 'snapshot volume',
             'protect volume snapshot', 'inspect snapshot', 'decide',
             'read clone depth', 'read clone geometry',
             'clone into images', 'snapshot clone',
             'protect clone snapshot', 'close clone', 'hold journal record',
             'register location',
             'wait for image to become active', 'settle journal record'],
            steps)
        self.assertIn('; steps: write journal record ', args['steps'])

    def test_no_steps_in_the_log_line_without_a_clone(self):
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload(base.fake_image_meta('qcow2', 'bare'))
        self.assertEqual('', info.call_args[0][1]['steps'])

    def test_encrypted_volume_uses_generic(self):
        vol = base.fake_volume(encrypted=True)
        self.cluster.add_image('volumes', vol.name)
        self.upload(volume=vol)
        self.generic_upload.assert_called_once()
        self.assertNotIn('get_stores_info_detail', self.glance_methods())

    def test_other_cluster_uses_generic(self):
        self.cluster.fsid = 'fsid-other'
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload()
        self.generic_upload.assert_called_once()
        reason = info.call_args[0][1]['reason']
        self.assertIn('cluster fsid-volumes', reason)
        self.assertIn('cluster fsid-other', reason)
        self.assertOnlyVolumeLeft()

    def test_store_from_volume_type(self):
        vol = base.fake_volume(store_id='files')
        self.cluster.add_image('volumes', vol.name)
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload(volume=vol)
        self.generic_upload.assert_called_once()
        self.assertIn("store 'files' is of type 'file'",
                      info.call_args[0][1]['reason'])

    @ddt.data(glanceclient.exc.HTTPNotFound(),
              glanceclient.exc.HTTPForbidden(),
              glanceclient.exc.HTTPInternalServerError(),
              exception.GlanceConnectionFailed(reason='refused'),
              ValueError('Expecting value: line 1 column 1'))
    def test_glance_store_errors_use_generic(self, error):
        self.glance_calls['get_stores_info_detail'] = error
        self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

    @ddt.data('_create_snapshot', '_protect_snapshot', '_clone_geometry',
              '_clone', '_create_image_snapshot', '_protect_image_snapshot')
    def test_failure_at_each_rbd_step_leaves_nothing(self, step):
        with mock.patch.object(clone.UploadClone, step,
                               side_effect=fake_permission_error(self)):
            with mock.patch.object(mixin.LOG, 'info') as info:
                self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()
        self.assertIn('removed what it made', info.call_args[0][1]['reason'])

    @ddt.data('register', 'wait_active')
    def test_failure_in_glance_steps_leaves_nothing(self, step):
        with mock.patch('cinder_rbd_upload_clone.location.' + step,
                        side_effect=RuntimeError('boom')):
            self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

    def test_image_deleted_meanwhile_no_fallback(self):
        cfg.CONF.set_override('send_service_user_token', True,
                              group='service_user')
        self.addCleanup(cfg.CONF.clear_override, 'send_service_user_token',
                        group='service_user')
        self.glance_calls['add_image_location'] = (
            glanceclient.exc.HTTPNotFound())
        self.assertRaises(exception.ImageNotFound, self.upload)
        self.generic_upload.assert_not_called()
        self.assertOnlyVolumeLeft()

    def test_clone_removed_by_glance_is_not_an_undo_failure(self):
        # Glance's failed location import task reverts by deleting the
        # clone from its store: the rollback finds nothing to remove.
        def glance_reverts(context, image_id, url, allow_legacy):
            images = self.cluster.pools['images']
            del images[image_id]
            raise location.LocationError('import task failed')

        with mock.patch('cinder_rbd_upload_clone.location.register',
                        side_effect=glance_reverts):
            with mock.patch.object(clone.LOG, 'error') as error:
                self.upload()
        error.assert_not_called()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

    def test_location_refused_leaves_nothing(self):
        self.glance_calls['add_image_location'] = (
            glanceclient.exc.HTTPForbidden())
        self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

    def test_location_import_failed_leaves_nothing(self):
        states = iter([{'status': 'queued', location.IMPORT_LOCK: 't'},
                       {'status': 'queued'}])
        self.glance_calls['get'] = lambda image_id: next(states)
        with mock.patch('time.sleep'):
            self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

    def test_location_import_failed_before_first_read(self):
        self.glance_calls['get'] = lambda image_id: {'id': image_id,
                                                     'status': 'queued'}
        self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

    def journal(self):
        return self.cluster.omap('volumes', journal.OBJECT)

    def test_content_glance_would_refuse_takes_generic_copy(self):
        # A "raw" volume whose bytes are a qcow2 with a backing file:
        # Glance refuses it on upload, so the clone path must not take it.
        vol = self.cluster.pools['volumes'][self.volume.name]
        vol.head = test_inspection.qcow2_header(backing='/etc/passwd')
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload()
        self.generic_upload.assert_called_once()
        reason = info.call_args[0][1]['reason']
        self.assertIn('backing_file', reason)
        self.assertOnlyVolumeLeft()
        self.assertEqual({}, self.journal())
        # Only the regions the inspectors need were read.
        self.assertEqual(1 << 20, self.cluster.bytes_read)

    def test_failed_generic_copy_releases_the_volume(self):
        # Glance refused the data: the parent's frames (which hold the
        # volume's open image) must not outlive the failure.
        class Handle(object):
            pass
        refs = []

        def parent_copy(*args):
            handle = Handle()
            refs.append(weakref.ref(handle))
            raise glanceclient.exc.HTTPOverLimit('413')
        self.generic_upload.side_effect = parent_copy
        self.configuration.enable_clone_optimization = True
        meta = base.fake_image_meta('qcow2', 'bare')
        self.assertRaises(glanceclient.exc.HTTPOverLimit,
                          self.upload, meta)
        self.assertIsNone(refs[0]())

    def test_over_glance_quota_takes_generic_copy(self):
        self.glance_calls['get_usage'] = lambda: {
            'image_size_total': {'usage': 10000, 'limit': 10240}}
        with mock.patch.object(mixin.LOG, 'info') as info:
            self.upload()
        self.generic_upload.assert_called_once()
        self.assertIn('image_size_total', info.call_args[0][1]['reason'])
        # Decided before anything was made in RBD.
        self.assertNotIn('create_snap', [c[0] for c in self.cluster.calls])
        self.assertOnlyVolumeLeft()

    def test_unreadable_glance_quota_takes_generic_copy(self):
        self.glance_calls['get_usage'] = glanceclient.exc.HTTPForbidden()
        self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()

    def test_activation_timeout_keeps_clone_and_does_not_fall_back(self):
        self.glance_calls['get'] = lambda image_id: {
            'id': image_id, 'status': 'queued', location.IMPORT_LOCK: 't'}
        self.configuration.clone_upload_activation_timeout = 0
        meta = base.fake_image_meta()
        self.assertRaises(location.ActivationTimeout, self.upload, meta)
        self.generic_upload.assert_not_called()
        self.assertIn('images/%s' % meta['id'], self.cluster.inventory())
        self.assertIn(meta['id'], self.journal())

    def test_journal_record_before_anything_in_rbd(self):
        seen = []
        real_put = journal.Journal.put

        def put(jrnl, record):
            seen.append(self.cluster.inventory())
            real_put(jrnl, record)
        with mock.patch.object(journal.Journal, 'put', put):
            self.upload()
        self.assertEqual([{'volumes/%s' % self.volume.name: []}], seen)
        self.assertEqual({}, self.journal())

    def test_undo_failure_fails_the_upload_without_generic_copy(self):
        # The clone still holds the image's name in Glance's pool: the
        # generic copy could not write the image there.
        with mock.patch.object(clone.UploadClone, '_protect_image_snapshot',
                               side_effect=RuntimeError('boom')), \
                mock.patch.object(clone.UploadClone, '_remove_clone',
                                  side_effect=RuntimeError('busy')), \
                mock.patch.object(mixin.LOG, 'error') as error:
            meta = base.fake_image_meta()
            self.assertRaises(exception.VolumeBackendAPIException,
                              self.upload, meta)
        self.generic_upload.assert_not_called()
        self.assertIn('remove clone', error.call_args[0][1]['what'])
        # The journal keeps the upload for the collector.
        self.assertIn(meta['id'], self.journal())
        # The clone's snapshot was undone; the clone, and so the protected
        # snapshot it hangs from, are left for the collector.
        inventory = self.cluster.inventory()
        self.assertEqual(['upload-%s.clone_snap' % meta['id']],
                         inventory.pop('volumes/%s' % self.volume.name))
        self.assertEqual({'images/%s' % meta['id']: []}, inventory)

    def test_deep_chain_is_flattened(self):
        # volume is a clone of a clone of ... (depth = rbd_max_clone_depth)
        self.configuration.rbd_max_clone_depth = 1
        self.cluster.add_image('volumes', 'base')
        self.cluster.pools['volumes']['base'].snaps['s'] = {
            'protected': True}
        self.cluster.pools['volumes'][self.volume.name].parent = (
            'volumes', 'base', 's')
        meta = self.upload()
        img = self.cluster.pools['images'][meta['id']]
        self.assertIsNone(img.parent)
        self.assertEqual(['snap'], list(img.snaps))
        self.assertEqual(
            [], list(self.cluster.pools['volumes'][self.volume.name].snaps))

    @ddt.data('never', 'sync', 'background')
    def test_each_image_opened_once(self, policy):
        # The clone is not opened again once made: Glance must be able to
        # delete it meanwhile.
        self.configuration.clone_upload_flatten = policy
        meta = base.fake_image_meta()
        clone_key = ('images', meta['id'])
        open_during_glance = []

        def get(image_id):
            open_during_glance.append(self.cluster.writers[clone_key])
            return {'id': image_id, 'status': 'active'}
        self.glance_calls['get'] = get
        with mock.patch.object(self.driver, '_start_background_flatten'):
            self.upload(meta)
        self.generic_upload.assert_not_called()
        self.assertEqual({('volumes', self.volume.name): 1,
                          clone_key: 1},
                         dict(self.cluster.opens))
        self.assertEqual([0], open_during_glance)
        self.assertEqual({}, +self.cluster.writers)

    def test_rollback_reopens_the_clone_after_glance_failed(self):
        self.glance_calls['add_image_location'] = (
            glanceclient.exc.HTTPForbidden())
        meta = self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()
        self.assertEqual(1, self.cluster.opens[('volumes',
                                                self.volume.name)])
        self.assertEqual(2, self.cluster.opens[('images', meta['id'])])
        self.assertEqual({}, +self.cluster.writers)

    @ddt.data(('volumes', 'snapshot volume'),
              ('images', 'snapshot clone'))
    @ddt.unpack
    def test_image_that_cannot_be_opened_is_undone(self, pool, step):
        fake_image = self.driver.rbd.Image

        def image(ioctx, name, **kwargs):
            if ioctx.pool == pool:
                raise fake_permission_error(self)
            return fake_image(ioctx, name, **kwargs)
        with mock.patch.object(self.driver.rbd, 'Image', image), \
                mock.patch.object(mixin.LOG, 'info') as info:
            self.upload()
        self.generic_upload.assert_called_once()
        self.assertOnlyVolumeLeft()
        self.assertIn("step '%s' failed" % step,
                      info.call_args[0][1]['reason'])
        self.assertEqual({}, +self.cluster.writers)
        self.assertEqual({}, self.journal())

    def test_close_failure_after_upload_is_only_logged(self):
        fake_close = self.driver.rbd.Image.close

        def close(image):
            fake_close(image)
            if image.ioctx.pool == 'volumes':
                raise self.driver.rbd.Error('close failed')
        with mock.patch.object(self.driver.rbd.Image, 'close', close), \
                mock.patch.object(clone.LOG, 'warning') as warning:
            meta = self.upload()
        self.generic_upload.assert_not_called()
        self.assertEqual(['snap'],
                         self.cluster.inventory()['images/%s' % meta['id']])
        self.assertEqual('volume', warning.call_args[0][1]['what'])
        self.assertEqual({}, +self.cluster.writers)

    def test_one_rados_connection_per_upload(self):
        self.upload()
        self.generic_upload.assert_not_called()
        self.assertEqual(1, self.cluster.connections)
        self.assertEqual(0, self.cluster.connected)

    def test_no_rados_connection_when_cheaper_checks_say_no(self):
        self.upload(base.fake_image_meta('qcow2', 'bare'))
        self.generic_upload.assert_called_once()
        self.assertEqual(0, self.cluster.connections)

    def test_rados_connection_closed_before_generic_copy(self):
        connected = []
        self.generic_upload.side_effect = (
            lambda *args: connected.append(self.cluster.connected))
        with mock.patch.object(clone.UploadClone, '_clone',
                               side_effect=fake_permission_error(self)):
            self.upload()
        self.assertEqual([0], connected)
        self.assertEqual(1, self.cluster.connections)
        self.assertOnlyVolumeLeft()

    def test_rados_connect_failure_is_a_no_go(self):
        with mock.patch.object(self.driver.rados.Rados, 'connect',
                               side_effect=self.driver.rados.Error('EIO')), \
                mock.patch.object(mixin.LOG, 'info') as info:
            self.upload()
        self.generic_upload.assert_called_once()
        self.assertIn("cannot read the fsid of backend 'ceph''s Ceph "
                      "cluster", info.call_args[0][1]['reason'])
        self.assertEqual('generic copy', info.call_args[0][1]['path'])
        self.assertNotIn('add_image_location', self.glance_methods())
        self.assertOnlyVolumeLeft()

    def test_stats_report_clone_upload(self):
        with mock.patch.object(rbd_driver.RBDDriver,
                               '_update_volume_stats'):
            self.driver._stats = {}
            self.driver._update_volume_stats()
        self.assertTrue(self.driver._stats['clone_upload_enabled'])

    def test_stats_report_clone_upload_off(self):
        self.configuration.enable_clone_optimization = False
        with mock.patch.object(rbd_driver.RBDDriver,
                               '_update_volume_stats'):
            self.driver._stats = {}
            self.driver._update_volume_stats()
        self.assertIs(False, self.driver._stats['clone_upload_enabled'])

    def test_driver_options_include_ours(self):
        names = [o.name for o in self.driver.get_driver_options()]
        self.assertIn('enable_clone_optimization', names)
        self.assertIn('rbd_pool', names)


def fake_permission_error(test):
    return test.driver.rbd.PermissionError('Operation not permitted')
