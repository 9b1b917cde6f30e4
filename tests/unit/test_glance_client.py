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

"""glance_client.py: privileged Glance calls on every supported Cinder.

The backport (Cinder 26) runs here on every release: on Cinder 27 and
later it is also compared with Cinder's own privileged client.
"""

from unittest import mock

import ddt
from keystoneauth1 import identity
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import service_token
from oslo_config import cfg
import testtools

# image_utils first: importing cinder.image.glance on its own hits a cycle
# between the two modules.
from cinder.image import image_utils  # noqa: F401
from cinder.image import glance  # noqa: H306
from cinder import service_auth  # noqa: H306

from cinder_rbd_upload_clone import compat
from cinder_rbd_upload_clone import glance_client

CONF = cfg.CONF
GLANCE = 'glance-host:9292'


@ddt.ddt
class GlanceClientTestCase(testtools.TestCase):

    def setUp(self):
        super(GlanceClientTestCase, self).setUp()
        self.override('glance_api_servers', ['http://' + GLANCE])
        self.override('auth_strategy', 'keystone')
        self.password_auth('glance', 'cinder-glance')
        self.password_auth('service_user', 'cinder-service')
        self.service_token(True)
        self.addCleanup(service_auth.reset_globals)
        self.context = mock.Mock(global_id='req-1')
        self.context.get_auth_plugin.return_value = mock.sentinel.user_auth
        patcher = mock.patch.object(glance_client.glanceclient, 'Client')
        self.client_class = patcher.start()
        self.addCleanup(patcher.stop)
        self.images = self.client_class.return_value.images
        self.images.get_stores_info_detail.return_value = {'stores': []}

    def override(self, name, value, group=None):
        CONF.set_override(name, value, group=group)
        self.addCleanup(CONF.clear_override, name, group=group)

    def password_auth(self, group, username):
        # As keystoneauth's loading does; unregistered after the test:
        # required options without values would fail other tests.
        for opt in ks_loading.get_auth_plugin_conf_options('password'):
            if opt.dest not in CONF[group]:
                CONF.register_opt(opt, group=group)
                self.addCleanup(CONF.unregister_opt, opt, group=group)
        for name, value in (('auth_type', 'password'),
                            ('auth_url', 'http://keystone:5000/v3'),
                            ('username', username), ('password', 'secret'),
                            ('user_domain_name', 'Default'),
                            ('project_name', 'service'),
                            ('project_domain_name', 'Default')):
            self.override(name, value, group)

    def service_token(self, on):
        self.override('send_service_user_token', on, 'service_user')

    def created_auth(self):
        self.client_class.assert_called_once()
        args, kwargs = self.client_class.call_args
        self.assertEqual(('2', 'http://' + GLANCE), args)
        self.assertEqual('req-1', kwargs['global_request_id'])
        self.assertIs(glance._SESSION, kwargs['session'])
        return kwargs['auth']

    def assertPassword(self, auth, username):
        self.assertIsInstance(auth, identity.Password)
        self.assertEqual(username, auth._username)

    def test_glance_section_is_registered_on_every_cinder(self):
        # Cinder 27+ registers it, glance_client.py on Cinder 26.
        self.assertEqual('password', CONF.glance.auth_type)
        self.assertIn('timeout', CONF.glance)

    def test_wrapper_is_cinders_where_cinder_has_privileged_calls(self):
        with mock.patch.object(compat, 'GLANCE_PRIVILEGED_CALLS', True):
            wrapper = glance_client.wrapper()
        self.assertIs(glance.GlanceClientWrapper, type(wrapper))
        with mock.patch.object(compat, 'GLANCE_PRIVILEGED_CALLS', False):
            wrapper = glance_client.wrapper()
        self.assertIsInstance(wrapper, glance_client.BackportClientWrapper)

    def test_privileged_call_uses_glance_section_with_service_token(self):
        body = glance_client.BackportClientWrapper().call(
            self.context, 'get_stores_info_detail', privileged_user=True)
        self.assertEqual({'stores': []}, body)
        # glanceclient never sees the argument.
        self.images.get_stores_info_detail.assert_called_once_with()
        auth = self.created_auth()
        self.assertIsInstance(auth, service_token.ServiceTokenAuthWrapper)
        self.assertPassword(auth.user_auth, 'cinder-glance')
        self.assertPassword(auth.service_auth, 'cinder-service')

    def test_privileged_call_without_service_token(self):
        self.service_token(False)
        glance_client.BackportClientWrapper().call(
            self.context, 'get', 'img', privileged_user=True)
        self.images.get.assert_called_once_with('img')
        self.assertPassword(self.created_auth(), 'cinder-glance')

    def test_privileged_call_without_glance_auth_uses_the_users(self):
        # As Cinder 27: no [glance] auth_type, the context's auth.
        self.override('auth_type', None, 'glance')
        self.service_token(False)
        glance_client.BackportClientWrapper().call(
            self.context, 'get', 'img', privileged_user=True)
        self.assertIs(mock.sentinel.user_auth, self.created_auth())

    @ddt.data({}, {'privileged_user': False})
    def test_user_call_is_cinders(self, kwargs):
        with mock.patch.object(glance, '_create_glance_client') as create:
            glance_client.BackportClientWrapper().call(
                self.context, 'get', 'img', **kwargs)
        create.assert_called_once()
        # (Cinder 27+ adds privileged_user=False.)
        self.assertEqual((self.context, GLANCE, False),
                         create.call_args[0][:3])
        self.assertFalse(any(create.call_args[0][3:]))
        create.return_value.images.get.assert_called_once_with('img')
        self.client_class.assert_not_called()

    def test_one_wrapper_switches_between_calls(self):
        # location.register: the user's call, then the privileged one.
        wrapper = glance_client.BackportClientWrapper()
        with mock.patch.object(glance, '_create_glance_client') as create:
            wrapper.call(self.context, 'add_image_location', 'img', 'u', {},
                         privileged_user=False)
            wrapper.call(self.context, 'add_image_location', 'img', 'u', {},
                         privileged_user=True)
        self.assertEqual(1, create.call_count)
        self.assertPassword(self.created_auth().user_auth, 'cinder-glance')

    def test_same_client_as_cinder_27(self):
        if not compat.GLANCE_PRIVILEGED_CALLS:
            self.skipTest('Cinder 26 has no privileged client to compare')
        glance._create_glance_client(self.context, GLANCE, False,
                                     privileged_user=True)
        theirs = self.client_class.call_args
        self.client_class.reset_mock()
        glance_client.create_privileged_client(self.context, GLANCE, False)
        ours = self.client_class.call_args
        self.assertEqual(theirs[0], ours[0])
        self.assertEqual(sorted(theirs[1]), sorted(ours[1]))
        for auth in (theirs[1]['auth'], ours[1]['auth']):
            self.assertIsInstance(auth,
                                  service_token.ServiceTokenAuthWrapper)
            self.assertPassword(auth.user_auth, 'cinder-glance')
            self.assertPassword(auth.service_auth, 'cinder-service')
