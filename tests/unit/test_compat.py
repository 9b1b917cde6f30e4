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

"""compat.py says what the installed Cinder release really does."""

import inspect
from unittest import mock

from glanceclient.v2 import images as glance_images
import testtools

from cinder.image import glance

from cinder_rbd_upload_clone import compat


class GlancePrivilegedCallsTestCase(testtools.TestCase):

    def _call_privileged(self):
        """What GlanceClientWrapper.call does with privileged_user."""
        controller = glance_images.Controller(mock.Mock(), mock.Mock())
        client = mock.Mock(images=mock.Mock(spec=[]))
        # glanceclient's own method: its signature, our answer.
        real = inspect.signature(controller.get_stores_info_detail)

        def get_stores_info_detail(*args, **kwargs):
            real.bind(*args, **kwargs)     # TypeError as glanceclient's
            return {'stores': []}
        client.images.get_stores_info_detail = get_stores_info_detail
        wrapper = glance.GlanceClientWrapper()
        wrapper.client = client
        return wrapper.call(mock.Mock(), 'get_stores_info_detail',
                            privileged_user=True)

    def test_flag_matches_the_wrapper(self):
        if compat.GLANCE_PRIVILEGED_CALLS:
            # Cinder 27 (2025.2) and later take the argument.
            self.assertEqual({'stores': []}, self._call_privileged())
        else:
            # Cinder 26 (2025.1) hands it to glanceclient, which refuses it.
            self.assertRaises(TypeError, self._call_privileged)

    def test_flag_matches_glance_service_credentials(self):
        # The [glance] keystoneauth options come with the argument.
        self.assertEqual(compat.GLANCE_PRIVILEGED_CALLS,
                         hasattr(glance, 'GLANCE_GROUP'))
