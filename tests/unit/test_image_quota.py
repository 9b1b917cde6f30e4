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

"""Glance's upload limits before a clone: the generic path decides the rest."""

from unittest import mock

import ddt
import glanceclient.exc
import testtools

from cinder_rbd_upload_clone import image_quota

GiB = 1 << 30
CAP = 1 << 40


@ddt.ddt
class QuotaTestCase(testtools.TestCase):

    def setUp(self):
        super(QuotaTestCase, self).setUp()
        self.client = mock.Mock()
        patcher = mock.patch('cinder_rbd_upload_clone.glance_client.wrapper',
                             return_value=self.client)
        patcher.start()
        self.addCleanup(patcher.stop)

    def usage(self, size_used=0, size_limit=10240, uploading=0,
              uploading_limit=5):
        self.client.call.return_value = {
            'image_size_total': {'usage': size_used, 'limit': size_limit},
            'image_count_uploading': {'usage': uploading,
                                      'limit': uploading_limit},
            'image_count_total': {'usage': 3, 'limit': 100},
            'image_stage_total': {'usage': 0, 'limit': 1000}}

    def test_asks_with_the_users_token(self):
        self.usage()
        self.assertTrue(image_quota.check('ctx', GiB, CAP)[0])
        self.client.call.assert_called_once_with(
            'ctx', 'get_usage', controller='info', privileged_user=False)

    def test_no_unified_limits(self):
        self.client.call.return_value = {}
        ok, reason = image_quota.check('ctx', GiB, CAP)
        self.assertTrue(ok)
        self.assertIn('no unified limits', reason)

    @ddt.data(
        # used MiB, limit MiB, volume GiB, clones?
        (0, 1024, 1, True),         # exactly at the limit after
        (1, 1024, 1, False),        # one MiB past after the upload
        (9000, 10240, 2, False),    # within now, past after
        (10241, 10240, 1, False),   # already past: Glance refuses too
        (0, -1, 100, True))         # -1: unlimited
    @ddt.unpack
    def test_image_size_total(self, used, limit, size_gib, clones):
        self.usage(size_used=used, size_limit=limit)
        ok, reason = image_quota.check('ctx', size_gib * GiB, CAP)
        self.assertEqual(clones, ok, reason)
        if not clones:
            self.assertIn('image_size_total', reason)

    def test_uploads_in_progress(self):
        self.usage(uploading=5, uploading_limit=5)
        ok, reason = image_quota.check('ctx', GiB, CAP)
        self.assertFalse(ok)
        self.assertIn('image_count_uploading', reason)

    def test_size_cap(self):
        ok, reason = image_quota.check('ctx', CAP + 1, CAP)
        self.assertFalse(ok)
        self.assertIn('clone_upload_image_size_cap', reason)
        self.client.call.assert_not_called()

    @ddt.data(glanceclient.exc.HTTPForbidden(),
              glanceclient.exc.HTTPInternalServerError(),
              RuntimeError('down'))
    def test_unreadable_is_a_no_go(self, error):
        self.client.call.side_effect = error
        ok, reason = image_quota.check('ctx', GiB, CAP)
        self.assertFalse(ok)
        self.assertIn('cannot read Glance\'s image limits', reason)

    @ddt.data(['not', 'a', 'dict'],
              {'image_size_total': {'usage': 'x', 'limit': 1}},
              {'image_size_total': {'limit': 1}},
              {'image_size_total': None})
    def test_malformed_is_a_no_go(self, body):
        self.client.call.return_value = body
        ok, reason = image_quota.check('ctx', GiB, CAP)
        self.assertFalse(ok)
        self.assertIn('malformed', reason)
