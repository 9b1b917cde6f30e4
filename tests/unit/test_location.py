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

"""Location registration: which credentials, which API, what errors."""

import time
from unittest import mock

import ddt
import glanceclient.exc
from oslo_config import cfg
import testtools

from cinder import exception

from cinder_rbd_upload_clone import location

CONF = cfg.CONF
URL = 'rbd://fsid/images/img/snap'


@ddt.ddt
class RegisterTestCase(testtools.TestCase):

    def setUp(self):
        super(RegisterTestCase, self).setUp()
        self.client = mock.Mock()
        patcher = mock.patch('cinder_rbd_upload_clone.glance_client.wrapper',
                             return_value=self.client)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.service_token(True)

    def service_token(self, on):
        CONF.set_override('send_service_user_token', on,
                          group='service_user')
        self.addCleanup(CONF.clear_override, 'send_service_user_token',
                        group='service_user')

    def calls(self):
        return [(c[0][1], c[1].get('privileged_user', False))
                for c in self.client.call.call_args_list]

    def test_user_token_with_service_token_first(self):
        self.assertEqual(location.LOCATION_API,
                         location.register('ctx', 'img', URL))
        self.client.call.assert_called_once_with(
            'ctx', 'add_image_location', 'img', URL, {},
            privileged_user=False)

    def test_service_credentials_without_service_token(self):
        self.service_token(False)
        location.register('ctx', 'img', URL)
        self.assertEqual([('add_image_location', True)], self.calls())

    def test_not_found_for_owner_means_deleted(self):
        self.client.call.side_effect = glanceclient.exc.HTTPNotFound()
        self.assertRaises(location.ImageGone, location.register,
                          'ctx', 'img', URL)

    def test_not_found_for_service_user_is_a_refusal(self):
        self.service_token(False)
        self.client.call.side_effect = glanceclient.exc.HTTPNotFound()
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertNotIsInstance(e, location.ImageGone)

    @ddt.data(glanceclient.exc.HTTPForbidden(),
              glanceclient.exc.HTTPUnauthorized())
    def test_refused_then_service_credentials(self, error):
        self.client.call.side_effect = [error, None]
        self.assertEqual(location.LOCATION_API,
                         location.register('ctx', 'img', URL))
        self.assertEqual([('add_image_location', False),
                          ('add_image_location', True)], self.calls())

    def test_refused_by_all(self):
        self.client.call.side_effect = glanceclient.exc.HTTPForbidden()
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertIn('service role', str(e))

    def test_no_new_api_no_legacy(self):
        self.client.call.side_effect = glanceclient.exc.HTTPNotImplemented()
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertIn('clone_upload_allow_legacy_location is off', str(e))
        self.assertEqual(1, self.client.call.call_count)

    def test_no_new_api_legacy_allowed(self):
        self.client.call.side_effect = [
            glanceclient.exc.HTTPNotImplemented(), None]
        self.assertEqual(location.LEGACY_API,
                         location.register('ctx', 'img', URL,
                                           allow_legacy=True))
        self.assertEqual([('add_image_location', False),
                          ('add_location', False)], self.calls())

    def test_legacy_refused(self):
        self.client.call.side_effect = [
            glanceclient.exc.HTTPNotImplemented(),
            glanceclient.exc.HTTPForbidden()]
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL, allow_legacy=True)
        self.assertIn('show_multiple_locations', str(e))

    def test_definite_errors(self):
        self.client.call.side_effect = glanceclient.exc.HTTPBadRequest()
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertIn('refused it', str(e))
        self.assertEqual(1, self.client.call.call_count)

    def answers(self, add, images, locations=()):
        """Glance answering the POST with ``add``, reads with ``images``.

        ``locations``: what the service-only locations listing answers,
        one entry per read (an exception, or a list of URLs).
        """
        images, locations = list(images), list(locations)

        def call(context, method, *args, **kwargs):
            if method == 'add_image_location':
                raise add
            if method == 'get':
                answer = images.pop(0) if len(images) > 1 else images[0]
            else:
                answer = (locations.pop(0) if len(locations) > 1 else
                          locations[0] if locations else
                          glanceclient.exc.HTTPForbidden())
                if not isinstance(answer, Exception):
                    answer = [{'url': u} for u in answer]
            if isinstance(answer, Exception):
                raise answer
            return answer
        self.client.call.side_effect = call

    # What a 409 or an unclear failure (5xx, Glance unreachable, a lost
    # answer) may hide: the POST reached Glance. Cinder's Glance client
    # retries the call on connection errors, and the retry meets 409.
    UNCLEAR = (glanceclient.exc.HTTPConflict(),
               glanceclient.exc.HTTPInternalServerError(),
               exception.GlanceConnectionFailed(reason='x'),
               RuntimeError('answer lost'))

    @ddt.data(*UNCLEAR)
    @mock.patch('time.sleep')
    def test_unclear_error_location_not_taken(self, error, sleep):
        self.answers(error, [{'status': 'queued'}], [[]])
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertNotIsInstance(e, location.NotDefinitive)
        self.assertIn('did not take the location', str(e))
        # Read again over a few seconds: the call may still be on its way.
        self.assertEqual(3.5, sum(c[0][0] for c in sleep.call_args_list))

    @ddt.data(*[(error, image, locations)
                for error in UNCLEAR for image, locations in (
                    ({'status': 'queued', location.IMPORT_LOCK: 't'},
                     glanceclient.exc.HTTPForbidden()),
                    ({'status': 'active'}, [URL]),
                    ({'status': 'queued'}, [URL]))])
    @ddt.unpack
    @mock.patch('time.sleep')
    def test_unclear_error_location_taken(self, error, image, locations,
                                          _sleep):
        self.answers(error, [image], [locations])
        self.assertEqual(location.LOCATION_API,
                         location.register('ctx', 'img', URL))

    @mock.patch('time.sleep')
    def test_unclear_error_taken_late(self, _sleep):
        # The retry's 409 came while the first POST was still in Glance:
        # the lock appears on a later read.
        self.answers(glanceclient.exc.HTTPConflict(),
                     [{'status': 'queued'}, {'status': 'queued'},
                      {'status': 'queued', location.IMPORT_LOCK: 't'}],
                     [[]])
        self.assertEqual(location.LOCATION_API,
                         location.register('ctx', 'img', URL))

    @ddt.data(*UNCLEAR)
    @mock.patch('time.sleep')
    def test_unclear_error_served_by_other_data(self, error, _sleep):
        # Served, locations readable, the clone not among them.
        self.answers(error, [{'status': 'active'}], [['rbd://other']])
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertNotIsInstance(e, location.NotDefinitive)

    @ddt.data(*UNCLEAR)
    @mock.patch('time.sleep')
    def test_unclear_error_served_locations_unreadable(self, error, _sleep):
        self.answers(error, [{'status': 'active'}],
                     [glanceclient.exc.HTTPForbidden()])
        self.assertRaises(location.NotDefinitive, location.register,
                          'ctx', 'img', URL)

    @mock.patch('time.sleep')
    def test_unclear_error_glance_silent_keeps_clone(self, _sleep):
        self.client.call.side_effect = exception.GlanceConnectionFailed(
            reason='down')
        e = self.assertRaises(location.NotDefinitive, location.register,
                              'ctx', 'img', URL)
        self.assertIn('did not say whether', str(e))

    @mock.patch('time.sleep')
    def test_unclear_error_image_gone(self, _sleep):
        self.client.call.side_effect = [
            glanceclient.exc.HTTPInternalServerError(),
            glanceclient.exc.HTTPNotFound()]
        self.assertRaises(location.ImageGone, location.register,
                          'ctx', 'img', URL)


class WaitActiveTestCase(testtools.TestCase):

    def setUp(self):
        super(WaitActiveTestCase, self).setUp()
        self.client = mock.Mock()
        patcher = mock.patch('cinder_rbd_upload_clone.glance_client.wrapper',
                             return_value=self.client)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(mock.patch.stopall)
        mock.patch('time.sleep').start()

    def images(self, *states):
        self.client.call.side_effect = [
            s if isinstance(s, Exception) else dict(status=s[0], **s[1])
            for s in states]

    def test_active(self):
        self.images(('queued', {location.IMPORT_LOCK: 't'}),
                    ('active', {}))
        self.assertEqual('active',
                         location.wait_active('ctx', 'img', 10)['status'])

    def test_task_failed(self):
        self.images(('queued', {location.IMPORT_LOCK: 't'}),
                    ('queued', {}))
        e = self.assertRaises(location.LocationError, location.wait_active,
                              'ctx', 'img', 10)
        self.assertIn('location import task failed', str(e))

    def test_task_failed_before_the_first_read(self):
        # The lock was taken before the POST answered: queued without it
        # means the task already failed (no need to wait for the timeout).
        self.images(('queued', {}))
        e = self.assertRaises(location.LocationError, location.wait_active,
                              'ctx', 'img', 10)
        self.assertNotIsInstance(e, location.ActivationTimeout)
        self.assertIn('location import task failed', str(e))

    def test_legacy_api_queued_is_not_failure(self):
        self.images(('queued', {}), ('active', {}))
        self.assertEqual('active', location.wait_active(
            'ctx', 'img', 10, api=location.LEGACY_API)['status'])

    def test_reads_often_first_then_every_half_second(self):
        locked = ('queued', {location.IMPORT_LOCK: 't'})
        self.images(locked, locked, ('active', {}))
        location.wait_active('ctx', 'img', 10)
        self.assertEqual([mock.call(0.1)] * 2, time.sleep.call_args_list)
        time.sleep.reset_mock()
        self.images(locked, locked, ('active', {}))
        location.wait_active('ctx', 'img', 10, fast_for=0)
        self.assertEqual([mock.call(0.5)] * 2, time.sleep.call_args_list)

    def test_deleted_meanwhile(self):
        self.images(glanceclient.exc.HTTPNotFound())
        e = self.assertRaises(location.LocationError, location.wait_active,
                              'ctx', 'img', 10)
        self.assertIn('deleted during the upload', str(e))

    def test_killed(self):
        self.images(('killed', {}))
        self.assertRaises(location.LocationError, location.wait_active,
                          'ctx', 'img', 10)

    def test_read_errors_are_retried(self):
        self.images(glanceclient.exc.HTTPInternalServerError(),
                    exception.GlanceConnectionFailed(reason='down'),
                    ('active', {}))
        self.assertEqual('active',
                         location.wait_active('ctx', 'img', 10)['status'])

    def test_read_errors_until_deadline_keep_the_location(self):
        self.client.call.side_effect = (
            glanceclient.exc.HTTPInternalServerError())
        e = self.assertRaises(location.ActivationTimeout,
                              location.wait_active, 'ctx', 'img', 0)
        self.assertIn('unreadable', str(e))

    def test_timeout(self):
        self.client.call.return_value = {'status': 'queued',
                                         location.IMPORT_LOCK: 't'}
        e = self.assertRaises(location.LocationError, location.wait_active,
                              'ctx', 'img', 0)
        self.assertIn('still queued', str(e))

    def test_deactivated_is_served(self):
        # Glance served it, an admin paused it: never undo that.
        self.images(('deactivated', {}))
        self.assertEqual('deactivated', location.wait_active(
            'ctx', 'img', 60)['status'])

    def test_pending_delete_keeps_the_clone(self):
        # Glance's scrubber owns the data now; an admin may restore it.
        self.images(('pending_delete', {}))
        self.assertRaises(location.NotDefinitive, location.wait_active,
                          'ctx', 'img', 60)
