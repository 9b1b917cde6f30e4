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
        patcher = mock.patch('cinder.image.glance.GlanceClientWrapper',
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

    @ddt.data((glanceclient.exc.HTTPConflict(), 'no longer queued'),
              (glanceclient.exc.HTTPBadRequest(), 'refused it'))
    @ddt.unpack
    def test_definite_errors(self, error, words):
        self.client.call.side_effect = error
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertIn(words, str(e))
        self.assertEqual(1, self.client.call.call_count)

    UNCLEAR = (glanceclient.exc.HTTPInternalServerError(),
               exception.GlanceConnectionFailed(reason='x'),
               RuntimeError('answer lost'))

    @ddt.data(*UNCLEAR)
    @mock.patch('time.sleep')
    def test_unclear_error_location_not_taken(self, error, _sleep):
        self.client.call.side_effect = [error, {'status': 'queued'}]
        e = self.assertRaises(location.LocationError, location.register,
                              'ctx', 'img', URL)
        self.assertNotIsInstance(e, location.ActivationTimeout)
        self.assertIn('failed', str(e))

    @ddt.data(*[(error, image) for error in UNCLEAR for image in (
        {'status': 'queued', location.IMPORT_LOCK: 'task'},
        {'status': 'active'})])
    @ddt.unpack
    @mock.patch('time.sleep')
    def test_unclear_error_location_taken(self, error, image, _sleep):
        # e.g. glanceclient's read-back after a POST that Glance took.
        self.client.call.side_effect = [error, image]
        self.assertEqual(location.LOCATION_API,
                         location.register('ctx', 'img', URL))

    @mock.patch('time.sleep')
    def test_unclear_error_glance_silent_keeps_clone(self, _sleep):
        self.client.call.side_effect = exception.GlanceConnectionFailed(
            reason='down')
        e = self.assertRaises(location.ActivationTimeout, location.register,
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
        patcher = mock.patch('cinder.image.glance.GlanceClientWrapper',
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
